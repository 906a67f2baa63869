/**
 * The Effect-side drivers the benches share: `k` callers working through `count` tasks, one
 * wake-up (a waiter subscribed, then the store it waits for, timed from the store's call), and a
 * bench's scoped `main` run with the line that names the machine.
 */
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import { Effect, Exit, Fiber } from "effect"
import type * as Scope from "effect/Scope"
import * as Os from "node:os"
import type { ResultBackend } from "@effect-celery/core"

/**
 * `k` caller fibers, each taking the next of `count` tasks until none is left: the same shape as
 * raw's `inFlight` (k async loops), so both sides pay for k callers and not for a fiber per call.
 */
export const callers = <E, R>(
  k: number,
  count: number,
  task: (i: number) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> => {
  let next = 0
  const caller: Effect.Effect<void, E, R> = Effect.suspend(() => {
    if (next >= count) return Effect.void
    const i = next++
    return Effect.zipRight(task(i), caller)
  })
  return Effect.all(
    Array.from({ length: Math.min(k, count) }, () => caller),
    { concurrency: "unbounded", discard: true }
  )
}

/** One wake-up of a new task: ms from the store's call to the waiter's return. */
export const wakeUp = (backend: ResultBackend.ResultBackend, i: number, settleMillis = 1) =>
  Effect.gen(function* () {
    const id = randomUUID()
    const waiter = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
    // Let the waiter subscribe (its first read comes back PENDING) before storing.
    yield* Effect.sleep(settleMillis)
    const t = performance.now()
    yield* backend.markAsDone(id, i)
    yield* Fiber.join(waiter)
    return { id, millis: performance.now() - t }
  })

/** Run a bench's scoped `main`; a failure is printed and sets the exit code. Resolves when done. */
export const runMain = <E>(main: Effect.Effect<void, E, Scope.Scope>): Promise<void> =>
  Effect.runPromiseExit(Effect.scoped(main)).then((exit) => {
    if (Exit.isFailure(exit)) {
      process.stderr.write(`${String(exit.cause)}\n`)
      process.exitCode = 1
    }
  })

/** The line under a bench's table: the machine's CPUs, load and Node version. */
export const machineLine = (): string =>
  `${Os.cpus().length} CPUs, load ${Os.loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, node ${process.version}`
