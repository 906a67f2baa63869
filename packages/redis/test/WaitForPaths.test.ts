/**
 * `RedisResultBackend.waitFor` has two paths, chosen by the `ResultConsumer` in context: its
 * `waitReady` when it has one (this package's consumer), else its `watch` stream (any other
 * consumer, e.g. a wrapper that does not forward `waitReady`). Both must give the same results.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Schedule } from "effect"
import * as Keys from "@effect-celery/core/Keys"
import * as Meta from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer, TypeId } from "@effect-celery/core/ResultConsumer"
import * as RedisClient from "@effect-celery/redis/RedisClient"
import * as RedisResultBackend from "@effect-celery/redis/RedisResultBackend"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import type { RedisServer } from "../../../test-support/RedisServer.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { uid } from "./Expect.js"

const Server = Context.GenericTag<RedisServer>("test/RedisServer")
const ServerLive = Layer.scoped(Server, redisServer())
const clientLayer = Layer.unwrapEffect(Effect.map(Server, (s) => RedisClient.layer({ host: s.host, port: s.port })))

/** How often each path of the consumer was entered. */
interface Calls {
  waitReady: number
  watch: number
}
const Calls = Context.GenericTag<Calls>("test/Calls")

/** This package's consumer behind a wrapper that counts calls and forwards `waitReady` or not. */
const countingConsumer = (forwardWaitReady: boolean) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const inner = yield* ResultConsumer
      const calls: Calls = { waitReady: 0, watch: 0 }
      const innerWaitReady = inner.waitReady
      assert.isDefined(innerWaitReady)
      const watch: ResultConsumer["watch"] = (taskIds, options) => {
        calls.watch++
        return inner.watch(taskIds, options)
      }
      const consumer: ResultConsumer =
        forwardWaitReady && innerWaitReady !== undefined
          ? {
              [TypeId]: TypeId,
              watch,
              waitReady: (taskId, timeout, options) => {
                calls.waitReady++
                return innerWaitReady(taskId, timeout, options)
              }
            }
          : { [TypeId]: TypeId, watch }
      return Context.make(ResultConsumer, consumer).pipe(Context.add(Calls, calls))
    })
  ).pipe(Layer.provide(RedisResultConsumer.layer()))

const testLayer = (forwardWaitReady: boolean) =>
  RedisResultBackend.layer().pipe(
    Layer.provideMerge(countingConsumer(forwardWaitReady)),
    Layer.provideMerge(clientLayer),
    Layer.provideMerge(ServerLive)
  )

const store = (taskId: string, state: string, result: unknown = null) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) => {
    const key = Keys.standard.task(taskId)
    const raw = Meta.encodeTaskMeta(Meta.make({ taskId, state, result, now: Date.now(), dateStyle: "offset" }))
    return redis.commands([["MULTI"], ["SET", key, raw], ["PUBLISH", key, raw], ["EXEC"]])
  })

const numsub = (taskId: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) =>
    redis.command(["PUBSUB", "NUMSUB", Keys.standard.task(taskId)])
  ).pipe(Effect.map((reply) => Number((reply as Array<unknown>)[1])))

/** SUBSCRIBE commands the server has run (INFO commandstats). */
const subscribeCalls = Effect.flatMap(RedisClient.RedisClient, (redis) => redis.command(["INFO", "commandstats"])).pipe(
  Effect.map((reply) => Number(/cmdstat_subscribe:calls=(\d+)/.exec(String(reply))?.[1] ?? 0))
)

/** Poll the server's own view (no fixed sleep) until it holds. */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.flatMap(check, (ok) => (ok ? Effect.void : Effect.fail("not yet" as const))).pipe(
    Effect.retry(Schedule.spaced("2 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDie
  )

for (const [name, fast] of [
  ["waitReady (the consumer's fast path)", true],
  ["watch (a consumer without waitReady)", false]
] as const) {
  describe(`waitFor through ${name}`, () => {
    layer(testLayer(fast), { timeout: "30 seconds", excludeTestServices: true })((it) => {
      /** The path this block is about was the one taken. */
      const tookPath = Effect.gen(function* () {
        const calls = yield* Calls
        if (fast) assert.isAbove(calls.waitReady, 0)
        else assert.isAbove(calls.watch, 0)
        assert.strictEqual(fast ? calls.watch : calls.waitReady, 0)
      })

      it.effect("returns the SUCCESS stored while waiting, after intermediate states; the channel is released", () =>
        Effect.gen(function* () {
          const backend = yield* ResultBackend
          const id = uid("success")
          const fiber = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
          yield* until(Effect.map(numsub(id), (n) => n === 1))
          yield* store(id, "STARTED")
          yield* store(id, "SUCCESS", 7)
          const meta = yield* Fiber.join(fiber)
          assert.strictEqual(meta.status, "SUCCESS")
          assert.strictEqual(meta.result, 7)
          yield* until(Effect.map(numsub(id), (n) => n === 0))
          yield* tookPath
        })
      )

      it.effect("a FAILURE fails with TaskFailedError", () =>
        Effect.gen(function* () {
          const backend = yield* ResultBackend
          const id = uid("failure")
          yield* store(id, "FAILURE", { exc_type: "ValueError", exc_message: ["bad"], exc_module: "builtins" })
          const error = yield* Effect.flip(backend.waitFor(id, { timeout: "10 seconds" }))
          assert.strictEqual(error._tag, "TaskFailedError")
          yield* tookPath
        })
      )

      it.effect("nothing stored: TimeoutError after the timeout, and nothing stays subscribed", () =>
        Effect.gen(function* () {
          const backend = yield* ResultBackend
          const id = uid("timeout")
          const error = yield* Effect.flip(backend.waitFor(id, { timeout: "200 millis" }))
          assert.strictEqual(error._tag, "TimeoutError")
          yield* until(Effect.map(numsub(id), (n) => n === 0))
          yield* tookPath
        })
      )
    })

    // Alone on its own server and consumer: the tests of a file run concurrently, and this one
    // asserts that nothing at all was called or subscribed (counters the others would move).
    layer(testLayer(fast), { timeout: "30 seconds", excludeTestServices: true })((it) => {
      it.effect("returns a state stored before the wait without waiting for a message", () =>
        Effect.gen(function* () {
          const backend = yield* ResultBackend
          const calls = yield* Calls
          const id = uid("stored")
          yield* store(id, "SUCCESS", "early")
          const before = { ...calls }
          const subscribes = yield* subscribeCalls
          const meta = yield* backend.waitFor(id, { timeout: "10 seconds" })
          assert.strictEqual(meta.result, "early")
          if (fast) {
            // This package's backend answers a finished task with one GET (`waitReady`'s
            // `readFirst`, with a timeout): no SUBSCRIBE.
            assert.deepStrictEqual(calls, { ...before, waitReady: before.waitReady + 1 })
            assert.strictEqual(yield* subscribeCalls, subscribes)
          } else {
            assert.strictEqual(calls.watch, before.watch + 1)
          }
        })
      )
    })
  })
}
