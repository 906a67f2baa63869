/**
 * Every documented timeout is kept while the server does not answer: redis-server frozen with
 * SIGSTOP (its sockets stay open, nothing is answered) or killed. `waitFor`, `getAll` and
 * `getMany` must fail with `TimeoutError` within 100 ms of their deadline, however many expire
 * together, and the channels they held are released in the background. Stores issued during a
 * freeze complete after SIGCONT and are readable.
 *
 * Timings are asserted as bounds (deadline − 50 ms, deadline + 100 ms) and printed for the record.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Effect, Fiber, Layer, Stream } from "effect"
import { TimeoutError } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend } from "@effect-celery/redis"
import { rawClient } from "../../../test-support/RawRedis.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { failureOf, uid } from "./Expect.js"

const backendAt = (url: string) =>
  Effect.map(Layer.build(RedisBackend.layerUrl(url)), (ctx) => Context.get(ctx, ResultBackend))

/** SIGSTOP the server; SIGCONT on `thaw` and, whatever happens, when the scope closes. */
const freeze = (server: RedisServer) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      process.kill(server.process.pid()!, "SIGSTOP")
      return { thaw: Effect.sync(() => thaw(server)) }
    }),
    () => Effect.sync(() => thaw(server))
  )
const thaw = (server: RedisServer) => {
  const pid = server.process.pid()
  if (pid !== undefined && server.process.isRunning()) process.kill(pid, "SIGCONT")
}

/** Milliseconds `effect` took, with its typed error (the test fails on a success). */
const timedFailure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = Date.now()
    return Effect.map(failureOf(effect), (error) => ({ error, millis: Date.now() - started }))
  })

const within = (millis: number, deadline: number, what: string) => {
  assert.isAtLeast(millis, deadline - 50, `${what}: not before its deadline`)
  assert.isAtMost(millis, deadline + 100, `${what}: within deadline + 100 ms`)
}

describe("timeouts while the server is frozen or dead", () => {
  it.scopedLive("frozen 4 s: waitFor 3 s (subscribed before), 10 × waitFor 1.5 s and getAll / getMany 1.5 s (started during) keep their deadlines; a store completes after", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const backend = yield* backendAt(server.url)
      const raw = yield* rawClient(server)
      // Both connections open and a subscription in place before the freeze.
      const early = uid("early")
      const ready = uid("ready")
      yield* backend.markAsDone(ready, 0)
      const before = yield* Effect.fork(timedFailure(backend.waitFor(early, { timeout: "3 seconds" })))
      while (((yield* Effect.promise(() => raw.pubSubNumSub(`celery-task-meta-${early}`)))[`celery-task-meta-${early}`] ?? 0) === 0) {
        yield* Effect.sleep("5 millis")
      }
      const frozen = yield* freeze(server)
      const frozenAt = Date.now()
      const waits = yield* Effect.forEach(
        Array.from({ length: 10 }, () => uid("during")),
        (id) => Effect.fork(timedFailure(backend.waitFor(id, { timeout: "1500 millis" }))),
        { concurrency: "unbounded" }
      )
      const all = yield* Effect.fork(timedFailure(backend.getAll([ready, uid("all")], { timeout: "1500 millis" })))
      const many = yield* Effect.fork(timedFailure(Stream.runCollect(backend.getMany([uid("many")], { timeout: "1500 millis" }))))
      const stored = uid("stored")
      const store = yield* Effect.fork(backend.markAsDone(stored, { after: "thaw" }))
      for (const wait of waits) {
        const { error, millis } = yield* Fiber.join(wait)
        assert.instanceOf(error, TimeoutError)
        within(millis, 1500, "waitFor 1.5 s")
      }
      const allResult = yield* Fiber.join(all)
      assert.instanceOf(allResult.error, TimeoutError)
      within(allResult.millis, 1500, "getAll 1.5 s")
      const manyResult = yield* Fiber.join(many)
      assert.instanceOf(manyResult.error, TimeoutError)
      within(manyResult.millis, 1500, "getMany 1.5 s")
      const first = yield* Fiber.join(before)
      assert.instanceOf(first.error, TimeoutError)
      within(first.millis, 3000, "waitFor 3 s")
      // Still frozen: the store is pending; it completes after SIGCONT.
      assert.isNull(store.unsafePoll(), "the store waits for the server")
      yield* Effect.sleep(Math.max(0, 4000 - (Date.now() - frozenAt)))
      yield* frozen.thaw
      yield* Fiber.join(store)
      const storedAt = Date.now() - frozenAt
      assert.deepStrictEqual((yield* backend.get(stored)).result, { after: "thaw" })
      // The connection serves new waits once the server is back.
      const next = uid("next")
      yield* backend.markAsDone(next, 1)
      assert.strictEqual((yield* backend.waitFor(next, { timeout: "5 seconds" })).result, 1)
      console.log(
        `freeze 4 s: waitFor 3 s → TimeoutError at ${first.millis} ms; 10 × waitFor 1.5 s → ` +
          `${Math.min(...(yield* Effect.forEach(waits, (w) => Effect.map(Fiber.join(w), (r) => r.millis))))}–` +
          `${Math.max(...(yield* Effect.forEach(waits, (w) => Effect.map(Fiber.join(w), (r) => r.millis))))} ms; ` +
          `getAll 1.5 s → ${allResult.millis} ms; getMany 1.5 s → ${manyResult.millis} ms; store issued during the freeze done ${storedAt} ms after it began`
      )
    }), 60_000)

  it.scopedLive("server killed: waitFor 1 s returns TimeoutError within 100 ms of its deadline; getAll / getMany fail at once with ConnectionError", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const backend = yield* backendAt(server.url)
      const ready = uid("ready")
      yield* backend.markAsDone(ready, 0)
      assert.strictEqual((yield* backend.waitFor(ready, { timeout: "5 seconds" })).result, 0)
      yield* server.process.kill
      const [wait, all, many] = yield* Effect.all([
        timedFailure(backend.waitFor(uid("dead"), { timeout: "1 second" })),
        timedFailure(backend.getAll([uid("dead")], { timeout: "1 second" })),
        timedFailure(Stream.runCollect(backend.getMany([uid("dead")], { timeout: "1 second" })).pipe(Effect.map(Chunk.size)))
      ], { concurrency: "unbounded" })
      assert.strictEqual(wait.error._tag, "TimeoutError", wait.error.message)
      within(wait.millis, 1000, "waitFor 1 s")
      // Reads are not retried without `alwaysRetry` (as Celery's): the first read fails at once.
      for (const [what, r] of [["getAll", all], ["getMany", many]] as const) {
        assert.strictEqual(r.error._tag, "ConnectionError", `${what}: ${r.error.message}`)
        assert.isAtMost(r.millis, 1100, what)
      }
      console.log(`server dead: waitFor 1 s → TimeoutError at ${wait.millis} ms; getAll 1 s → ConnectionError at ${all.millis} ms, getMany 1 s → at ${many.millis} ms`)
    }), 30_000)
})
