import * as RetryPolicy from "@effect-celery/core/RetryPolicy"
import { CommandError, ConnectionError, E_RETRY_LIMIT_EXCEEDED, RetryLimitExceeded } from "@effect-celery/core/Errors"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Clock, Duration, Effect, Exit, Fiber, Logger, LogLevel, Random, Schedule, TestClock } from "effect"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { pythonJson } from "../../../test-support/Python.js"
import type { HarnessError } from "../../../test-support/RedisServer.js"

// ---------------------------------------------------------------------------------------------
// Reference vectors from the real kombu/celery (system python). One subprocess for the file.

interface PyPolicy {
  readonly max_retries: number | null
  readonly interval_start: number
  readonly interval_step: number
  readonly interval_max: number
  readonly timeout: number | null
}

interface Vector {
  readonly policy: PyPolicy
  readonly cap: number
  readonly attempts: number
  readonly outcome: "exhausted" | "capped"
  readonly reason: "MaxRetries" | "Timeout" | null
  readonly tts: ReadonlyArray<number>
  readonly sleeps: ReadonlyArray<number>
  readonly logs: ReadonlyArray<readonly [string, string]>
  readonly fxrange: ReadonlyArray<number>
}

interface Vectors {
  readonly E_RETRY_LIMIT_EXCEEDED: string
  readonly vectors: ReadonlyArray<Vector>
  readonly humanize: ReadonlyArray<readonly [string, string, string]>
  readonly fixed2: ReadonlyArray<readonly [string, string]>
  readonly lost: ReadonlyArray<readonly [number, number | null, number, string]>
}

const SCRIPT = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "python", "kombu_vectors.py")

let loading: Promise<Exit.Exit<Vectors, HarnessError>> | undefined
// Fails (never skips) when the system python or its kombu/celery is missing. Run once, outside
// any test's TestClock, and shared by every test of the file.
const vectors: Effect.Effect<Vectors, HarnessError> = Effect.flatten(
  Effect.promise(() => (loading ??= Effect.runPromiseExit(pythonJson<Vectors>({ script: SCRIPT }))))
)

const pyNumber = (repr: string): number =>
  repr === "inf" ? Infinity : repr === "-inf" ? -Infinity : repr === "nan" ? NaN : Number(repr)

const toPolicy = (p: PyPolicy): RetryPolicy.RetryPolicy => ({
  maxRetries: p.max_retries,
  intervalStart: p.interval_start,
  intervalStep: p.interval_step,
  intervalMax: p.interval_max,
  timeout: p.timeout ?? undefined
})

const label = (v: Vector): string => JSON.stringify(v.policy)

const connectionError = (n: number) => new ConnectionError({ reason: "Connect", message: `refused #${n}` })

/** Runs `effect` with a Logger that records `[LEVEL, message]` lines. */
const withCapturedLogs = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<readonly [A, ReadonlyArray<readonly [string, string]>], E, R> =>
  Effect.suspend(() => {
    const lines: Array<readonly [string, string]> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      lines.push([logLevel.label, text])
    })
    return effect.pipe(
      Effect.provide(Logger.add(logger)),
      Effect.map((a) => [a, lines] as const)
    )
  })

const pyLevel = (level: string): string => (level === "CRITICAL" ? "FATAL" : level)

// ---------------------------------------------------------------------------------------------

describe("RetryPolicy vs kombu retry_over_time", () => {
  it.effect("the reference script runs on the system python and covers the quirks", () =>
    Effect.gen(function* () {
      const v = yield* vectors
      assert.isAtLeast(v.vectors.length, 200)
      const reasons = new Set(v.vectors.map((x) => `${x.outcome}/${x.reason}`))
      assert.deepStrictEqual([...reasons].sort(), ["capped/null", "exhausted/MaxRetries", "exhausted/Timeout"])
      assert.strictEqual(v.E_RETRY_LIMIT_EXCEEDED, E_RETRY_LIMIT_EXCEEDED)
    })
  )

  it.effect("intervals() equals kombu fxrange(start, max + start, step, repeatlast=True)", () =>
    Effect.gen(function* () {
      const v = yield* vectors
      for (const vector of v.vectors) {
        const ours: Array<number> = []
        for (const x of RetryPolicy.intervals(toPolicy(vector.policy))) {
          if (ours.length === vector.fxrange.length) break
          ours.push(x)
        }
        assert.deepStrictEqual(ours, vector.fxrange, label(vector))
      }
    })
  )

  it.effect("schedule(): intervals, sleeps, attempts, give-up reason and log lines equal kombu's", () =>
    Effect.gen(function* () {
      const v = yield* vectors
      for (const vector of v.vectors) {
        // Exhausted: every attempt failed and the last failure was final. Capped: the script
        // stopped drawing after `attempts` (the last attempt was not a connection failure).
        const failures = vector.outcome === "exhausted" ? vector.attempts : vector.attempts - 1
        const inputs = Array.from({ length: failures }, (_, i) => connectionError(i))
        const [outs, logs] = yield* withCapturedLogs(
          Schedule.run(RetryPolicy.schedule(toPolicy(vector.policy)), 0, inputs)
        )
        const steps = Chunk.toReadonlyArray(outs)
        const retries = steps.filter((s) => s._tag === "Retry")
        assert.strictEqual(retries.length, vector.attempts - 1, `retries ${label(vector)}`)
        assert.deepStrictEqual(
          retries.map((s) => s.tts),
          vector.tts,
          `tts ${label(vector)}`
        )
        assert.deepStrictEqual(
          retries.map((s) => (s._tag === "Retry" ? Duration.toMillis(s.delay) : -1)),
          // Effect Durations hold nanoseconds: kombu's float seconds at that resolution.
          vector.sleeps.map((s) => Duration.toMillis(Duration.millis(s * 1000))),
          `sleeps ${label(vector)}`
        )
        assert.deepStrictEqual(
          retries.map((s) => s.retries),
          retries.map((_, i) => i)
        )
        const last = steps[steps.length - 1]
        if (vector.outcome === "exhausted") {
          assert.deepStrictEqual(last, { _tag: "GiveUp", retries: vector.attempts - 1, reason: vector.reason! })
        } else {
          assert.strictEqual(steps.length, retries.length, `never gives up ${label(vector)}`)
        }
        assert.deepStrictEqual(
          logs,
          vector.logs.map(([level, message]) => [pyLevel(level), message] as const),
          `logs ${label(vector)}`
        )
      }
    })
  )

  it.effect("retry() driven by the TestClock: attempts at kombu's times, then RetryLimitExceeded", () =>
    Effect.gen(function* () {
      const v = yield* vectors
      // Every TestClock wake-up costs a real timer tick, so this end-to-end check takes the
      // hand-written quirk cases and a slice of the random ones; schedule() above checks them all.
      const runs = yield* Effect.forEach(v.vectors.slice(0, 70), (vector) =>
        Effect.gen(function* () {
          const times: Array<number> = []
          const errors: Array<ConnectionError> = []
          const stop = new CommandError({ command: "SET", message: "stop drawing" })
          const attempt = Effect.flatMap(
            Clock.currentTimeMillis,
            (now): Effect.Effect<never, ConnectionError | CommandError> => {
              times.push(now)
              if (times.length >= vector.cap) return Effect.fail(stop)
              const e = connectionError(times.length)
              errors.push(e)
              return Effect.fail(e)
            }
          )
          const fiber = yield* Effect.fork(
            Effect.exit(
              RetryPolicy.retry(toPolicy(vector.policy))(attempt).pipe(Logger.withMinimumLogLevel(LogLevel.None))
            )
          )
          return { vector, times, errors, stop, fiber }
        })
      )
      yield* TestClock.setTime(Number.POSITIVE_INFINITY)
      for (const run of runs) {
        const { vector } = run
        const exit = yield* Fiber.join(run.fiber)
        assert.strictEqual(run.times.length, vector.attempts, `attempts ${label(vector)}`)
        const gaps = run.times.slice(1).map((t, i) => t - run.times[i]!)
        gaps.forEach((gap, i) => {
          const expected = vector.sleeps[i]! * 1000
          assert.isAtMost(Math.abs(gap - expected), 1e-6 * Math.max(1, expected), `gap ${i} ${label(vector)}`)
        })
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          if (vector.outcome === "capped") {
            assert.strictEqual(error, run.stop, "a non-connection error passes through untouched")
          } else {
            assert.instanceOf(error, RetryLimitExceeded)
            if (error instanceof RetryLimitExceeded) {
              assert.strictEqual(error.retries, vector.attempts - 1)
              assert.strictEqual(error.lastCause, run.errors[run.errors.length - 1])
            }
          }
        }
      }
    })
  )

  it.effect("humanizeSeconds and the '.2f' formatting equal celery's", () =>
    Effect.gen(function* () {
      const v = yield* vectors
      for (const [repr, prefix, expected] of v.humanize) {
        const x = pyNumber(repr)
        const ours =
          prefix === "micro"
            ? RetryPolicy.humanizeSeconds(x, "in ", { sep: " ", now: "right now", microseconds: true })
            : RetryPolicy.humanizeSeconds(x, prefix)
        assert.strictEqual(ours, expected, `humanize_seconds(${repr}, ${prefix})`)
      }
      for (const [repr, expected] of v.fixed2) {
        assert.strictEqual(RetryPolicy.formatFixed2(pyNumber(repr)), expected, `format(${repr}, '.2f')`)
      }
      for (const [retries, maxRetries, tts, expected] of v.lost) {
        assert.strictEqual(RetryPolicy.connectionLostMessage(retries, maxRetries, tts), expected)
      }
    })
  )
})

// ---------------------------------------------------------------------------------------------

describe("RetryPolicy.merge", () => {
  it.effect("merges over Celery's defaults", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(RetryPolicy.merge(), RetryPolicy.defaults)
      assert.deepStrictEqual(RetryPolicy.defaults, {
        maxRetries: 20,
        intervalStart: 0,
        intervalStep: 1,
        intervalMax: 1
      })
      assert.deepStrictEqual(RetryPolicy.merge({ maxRetries: null, timeout: 30 }), {
        maxRetries: null,
        intervalStart: 0,
        intervalStep: 1,
        intervalMax: 1,
        timeout: 30
      })
      assert.deepStrictEqual(RetryPolicy.merge({ intervalStep: 2 }, RetryPolicy.merge({ intervalMax: 5 })), {
        maxRetries: 20,
        intervalStart: 0,
        intervalStep: 2,
        intervalMax: 5
      })
    })
  )
})

describe("RetryPolicy.retry", () => {
  const fast: RetryPolicy.RetryPolicy = { maxRetries: 3, intervalStart: 0, intervalStep: 1, intervalMax: 1 }

  it.effect("retries a ConnectionError and returns the eventual success", () =>
    Effect.gen(function* () {
      let attempts = 0
      const op: Effect.Effect<string, ConnectionError | CommandError> = Effect.suspend(() =>
        ++attempts < 3 ? Effect.fail(connectionError(attempts)) : Effect.succeed("ok")
      )
      // The error type is narrowed: ConnectionError is replaced by RetryLimitExceeded.
      const retried: Effect.Effect<string, CommandError | RetryLimitExceeded> = RetryPolicy.retry(fast)(op)
      const fiber = yield* Effect.fork(retried)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.strictEqual(attempts, 3)
      assert.strictEqual(yield* Clock.currentTimeMillis, 1000)
    })
  )

  it.effect("does not retry other errors", () =>
    Effect.gen(function* () {
      let attempts = 0
      const boom = new CommandError({ command: "GET", message: "WRONGTYPE" })
      const error = yield* RetryPolicy.retry(fast)(
        Effect.suspend(() => {
          attempts++
          return Effect.fail(boom)
        })
      ).pipe(Effect.flip)
      assert.strictEqual(error, boom)
      assert.strictEqual(attempts, 1)
    })
  )

  it.effect("fails with RetryLimitExceeded carrying the last connection error and the retry count", () =>
    Effect.gen(function* () {
      let attempts = 0
      let last: ConnectionError | undefined
      const fiber = yield* Effect.fork(
        RetryPolicy.retry(fast)(
          Effect.suspend(() => {
            last = connectionError(++attempts)
            return Effect.fail(last)
          })
        ).pipe(Effect.flip)
      )
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, RetryLimitExceeded)
      assert.strictEqual(error.retries, 3)
      assert.strictEqual(attempts, 4)
      assert.strictEqual(error.lastCause, last)
      assert.include(error.message, "gave up after 3 retries")
    })
  )

  it.effect("honors the timeout from before the first attempt, as kombu does", () =>
    Effect.gen(function* () {
      // Each attempt takes 2 s before failing; timeout 3 s: failures at 2 s (retry), 4 s (> 3: stop).
      let attempts = 0
      const slow = Effect.zipRight(
        Effect.sleep("2 seconds"),
        Effect.suspend(() => Effect.fail(connectionError(++attempts)))
      )
      const policy: RetryPolicy.RetryPolicy = {
        maxRetries: null,
        intervalStart: 0,
        intervalStep: 1,
        intervalMax: 1,
        timeout: 3
      }
      const fiber = yield* Effect.fork(RetryPolicy.retry(policy)(slow).pipe(Effect.flip))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, RetryLimitExceeded)
      assert.strictEqual(attempts, 2)
      assert.strictEqual(error.retries, 1)
      assert.include(error.message, "(timeout)")
      // The standalone schedule starts counting at the first failure (2 s) instead: it retries again.
      const outs = yield* Schedule.run(RetryPolicy.schedule(policy), 2000, [connectionError(1), connectionError(2)])
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(outs).map((o) => o._tag),
        ["Retry", "Retry"]
      )
    })
  )

  it.effect("logs each retry at ERROR as Celery does", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        withCapturedLogs(
          RetryPolicy.retry({ ...fast, maxRetries: 2 })(Effect.fail(connectionError(0))).pipe(Effect.flip)
        )
      )
      yield* TestClock.adjust("5 seconds")
      const [error, logs] = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "RetryLimitExceeded")
      assert.deepStrictEqual(logs, [
        ["ERROR", "Connection to Redis lost: Retry (0/2) now."],
        ["ERROR", "Connection to Redis lost: Retry (1/2) in 1.00 second."]
      ])
    })
  )

  it.effect("retryReconnect logs E_RETRY_LIMIT_EXCEEDED at FATAL and fails with it", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        withCapturedLogs(
          RetryPolicy.retryReconnect({ ...fast, maxRetries: 1 })(Effect.fail(connectionError(0))).pipe(Effect.flip)
        )
      )
      yield* TestClock.adjust("5 seconds")
      const [error, logs] = yield* Fiber.join(fiber)
      assert.instanceOf(error, RetryLimitExceeded)
      assert.strictEqual(error.message, E_RETRY_LIMIT_EXCEEDED)
      assert.strictEqual(error.retries, 1)
      assert.deepStrictEqual(logs, [
        ["ERROR", "Connection to Redis lost: Retry (0/1) now."],
        ["FATAL", E_RETRY_LIMIT_EXCEEDED]
      ])
    })
  )
})

// ---------------------------------------------------------------------------------------------

describe("RetryPolicy always-retry (result_backend_always_retry)", () => {
  const policy: RetryPolicy.AlwaysRetryPolicy = { maxRetries: 12, baseSleepMillis: 10, maxSleepMillis: 10000 }

  it.effect("bounds each sleep by min(max, base * 2^n), n from 1", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(
        Array.from({ length: 12 }, (_, i) => RetryPolicy.alwaysRetryCapMillis(policy, i + 1)),
        [20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10000, 10000, 10000]
      )
      assert.strictEqual(RetryPolicy.alwaysRetryCapMillis({ ...policy, baseSleepMillis: 0 }, 5000), 0)
      assert.strictEqual(RetryPolicy.alwaysRetryCapMillis(policy, 5000), 10000)
      assert.deepStrictEqual(RetryPolicy.resolveAlwaysRetry(true), RetryPolicy.alwaysRetryDefaults)
      assert.strictEqual(RetryPolicy.resolveAlwaysRetry(false), undefined)
      assert.strictEqual(RetryPolicy.resolveAlwaysRetry(undefined), undefined)
      assert.deepStrictEqual(RetryPolicy.resolveAlwaysRetry({ maxRetries: 3 }), {
        maxRetries: 3,
        baseSleepMillis: 10,
        maxSleepMillis: 10000
      })
    })
  )

  it.effect("with a seeded Random: delays are full-jitter within bounds, reproducible, and bounded in count", () =>
    Effect.gen(function* () {
      const inputs = Array.from({ length: 20 }, (_, i) => connectionError(i))
      const runWith = (seed: number) =>
        Schedule.run(RetryPolicy.alwaysRetrySchedule(policy), 0, inputs).pipe(
          Effect.withRandom(Random.make(seed)),
          Effect.map(Chunk.toReadonlyArray)
        )
      const all: Array<number> = []
      for (const seed of [1, 2, 3, 42, 1234]) {
        const steps = yield* runWith(seed)
        assert.strictEqual(steps.length, policy.maxRetries + 1)
        steps.slice(0, policy.maxRetries).forEach((step, i) => {
          assert.strictEqual(step._tag, "Retry")
          if (step._tag === "Retry") {
            const ms = Duration.toMillis(step.delay)
            assert.strictEqual(step.retries, i + 1)
            assert.isTrue(Number.isInteger(ms))
            assert.isAtLeast(ms, 0)
            assert.isAtMost(ms, Math.min(policy.maxSleepMillis, policy.baseSleepMillis * 2 ** (i + 1)))
            all.push(ms / RetryPolicy.alwaysRetryCapMillis(policy, i + 1))
          }
        })
        assert.deepStrictEqual(steps[policy.maxRetries], {
          _tag: "GiveUp",
          retries: policy.maxRetries,
          reason: "MaxRetries"
        })
        assert.deepStrictEqual(yield* runWith(seed), steps, "same seed, same delays")
      }
      // Jitter really spreads over the range (not all at one end).
      assert.isBelow(Math.min(...all), 0.25)
      assert.isAbove(Math.max(...all), 0.75)
    })
  )

  it.effect("the first sleep is within [0, 20] ms and the extremes are reachable", () =>
    Effect.gen(function* () {
      const run = (values: [number, ...Array<number>]) =>
        Schedule.run(RetryPolicy.alwaysRetrySchedule(policy), 0, [connectionError(0), connectionError(1)]).pipe(
          Effect.withRandom(Random.fixed(values)),
          Effect.map((c) => Chunk.toReadonlyArray(c).map((s) => (s._tag === "Retry" ? Duration.toMillis(s.delay) : -1)))
        )
      assert.deepStrictEqual(yield* run([0, 0]), [0, 0])
      assert.deepStrictEqual(yield* run([1e9, 1e9]), [20, 40])
    })
  )

  it.effect("alwaysRetry retries connection errors and inner RetryLimitExceeded, passes others, gives up typed", () =>
    Effect.gen(function* () {
      const small: RetryPolicy.AlwaysRetryPolicy = { maxRetries: 3, baseSleepMillis: 10, maxSleepMillis: 100 }
      // Recovers after two failures of different retryable kinds.
      let attempts = 0
      const flaky = Effect.suspend((): Effect.Effect<number, ConnectionError | RetryLimitExceeded> => {
        attempts++
        if (attempts === 1) return Effect.fail(connectionError(1))
        if (attempts === 2) {
          return Effect.fail(new RetryLimitExceeded({ message: "inner", retries: 20, lastCause: connectionError(2) }))
        }
        return Effect.succeed(attempts)
      })
      const ok = yield* Effect.fork(RetryPolicy.alwaysRetry(small)(flaky))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(ok), 3)

      const boom = new CommandError({ command: "GET", message: "WRONGTYPE" })
      let commandAttempts = 0
      const passed = yield* RetryPolicy.alwaysRetry(small)(
        Effect.suspend(() => {
          commandAttempts++
          return Effect.fail(boom)
        })
      ).pipe(Effect.flip)
      assert.strictEqual(passed, boom)
      assert.strictEqual(commandAttempts, 1)

      // Layered as in Celery ≥ 5.5: the outer loop around the inner kombu retry.
      let inner = 0
      const inner0: RetryPolicy.RetryPolicy = { maxRetries: 1, intervalStart: 0, intervalStep: 1, intervalMax: 1 }
      const layered = RetryPolicy.alwaysRetry(small)(
        RetryPolicy.retry(inner0)(Effect.suspend(() => Effect.fail(connectionError(++inner)))).pipe(
          Logger.withMinimumLogLevel(LogLevel.None)
        )
      )
      const fiber = yield* Effect.fork(Effect.flip(layered))
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, RetryLimitExceeded)
      assert.strictEqual(error.retries, 3)
      assert.strictEqual(inner, 8, "(1 + 3 outer) × (1 + 1 inner) attempts")
      assert.strictEqual(error.lastCause.message, "refused #8")
    })
  )
})
