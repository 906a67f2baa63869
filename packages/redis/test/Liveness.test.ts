/**
 * A dead subscriber connection is noticed: the subscriber connection runs through a loopback TCP
 * proxy (test-support/TcpProxy.ts) that silently stops forwarding it (no FIN, no RST, no data), as
 * a half-open socket behind a load balancer does. The health-check PING gets no PONG within its
 * deadline, the connection is dropped, a new one re-subscribes and re-reads every watched key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Fiber, Layer, Stream } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import { RedisBackend, RedisClient } from "@effect-celery/redis"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import { redisServer } from "../../../test-support/RedisServer.js"
import { tcpProxy } from "../../../test-support/TcpProxy.js"
import { uid } from "./Expect.js"

describe("subscriber liveness", () => {
  it.scopedLive(
    "a blackholed subscriber connection: a watch of 1,000 tasks written during the blackout gets all of them",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const proxy = yield* tcpProxy(server)
        const interval = 1000
        const timeout = 1000
        const consumerCtx = yield* Layer.build(
          RedisResultConsumer.layer(
            {},
            { healthCheckInterval: `${interval} millis`, healthCheckTimeout: `${timeout} millis` }
          ).pipe(Layer.provideMerge(RedisClient.layer({ host: proxy.host, port: proxy.port })))
        )
        const consumer = Context.get(consumerCtx, ResultConsumer)
        // The "worker" writes straight to the server.
        const worker = Context.get(yield* Layer.build(RedisBackend.layerUrl(server.url)), ResultBackend)
        const ids = Array.from({ length: 1000 }, () => uid("live"))
        yield* worker.store(ids[0]!, "STARTED", null)
        const synced = yield* Deferred.make<void>()
        const watching = yield* consumer.watch(ids).pipe(
          Stream.tap(() => Deferred.succeed(synced, undefined)),
          Stream.runCollect,
          Effect.fork
        )
        // The first item (the stored STARTED) comes at the end of the watch's sync.
        yield* Deferred.await(synced)
        const holed = proxy.blackhole((c) => c.sent().toUpperCase().includes("SUBSCRIBE"))
        assert.strictEqual(holed, 1, "the subscriber connection is blackholed")
        const started = Date.now()
        yield* Effect.forEach(ids, (id) => worker.markAsDone(id, id), { concurrency: 100, discard: true })
        const written = Date.now() - started
        const items = Array.from(yield* Fiber.join(watching))
        const elapsed = Date.now() - started
        const done = items.filter((item) => Either.isRight(item) && item.right.status === "SUCCESS")
        assert.strictEqual(done.length, 1000, "every task's result delivered")
        assert.sameMembers(
          done.map((item) => (Either.isRight(item) ? item.right.result : null)),
          ids
        )
        // Liveness deadline (idle interval + PONG deadline) + resync, with room for a loaded machine.
        assert.isBelow(elapsed, interval + timeout + 4000)
        // A fresh subscriber connection did the resync.
        assert.isTrue(proxy.connections().some((c) => !c.blackholed() && c.sent().toUpperCase().includes("SUBSCRIBE")))
        console.log(
          `blackhole: 1,000 results written in ${written} ms, all delivered ${elapsed} ms after the blackout began (interval ${interval} ms + PONG deadline ${timeout} ms)`
        )
      }),
    60_000
  )
  it.scopedLive(
    "an UNSUBSCRIBE never acknowledged (the connection went silent after a watch ended) does not hold the next watch",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const proxy = yield* tcpProxy(server)
        const timeout = 1000
        // No idle health check: only the bound on the acknowledgement can notice the silence.
        const consumerCtx = yield* Layer.build(
          RedisResultConsumer.layer({}, { healthCheckInterval: null, healthCheckTimeout: `${timeout} millis` }).pipe(
            Layer.provideMerge(RedisClient.layer({ host: proxy.host, port: proxy.port }))
          )
        )
        const consumer = Context.get(consumerCtx, ResultConsumer)
        const worker = Context.get(yield* Layer.build(RedisBackend.layerUrl(server.url)), ResultBackend)
        const first = uid("first")
        const next = uid("next")
        yield* worker.store(first, "STARTED", null)
        yield* worker.markAsDone(next, "done")
        const synced = yield* Deferred.make<void>()
        const watching = yield* consumer.watch([first]).pipe(
          Stream.tap(() => Deferred.succeed(synced, undefined)),
          Stream.runDrain,
          Effect.fork
        )
        yield* Deferred.await(synced)
        const holed = proxy.blackhole((c) => c.sent().toUpperCase().includes("SUBSCRIBE"))
        assert.strictEqual(holed, 1, "the subscriber connection is blackholed")
        // Interrupted: its UNSUBSCRIBE goes out into the silence, and the driver awaits its acknowledgement.
        yield* Fiber.interrupt(watching)
        const subscriberConnection = proxy.connections().find((c) => c.blackholed())!
        while (!subscriberConnection.sent().toUpperCase().includes("UNSUBSCRIBE")) yield* Effect.sleep("5 millis")
        const started = Date.now()
        const items = yield* consumer.watch([next]).pipe(Stream.runCollect, Effect.timeout("10 seconds"))
        const elapsed = Date.now() - started
        assert.deepStrictEqual(
          Array.from(items).map((item) => (Either.isRight(item) ? item.right.result : null)),
          ["done"]
        )
        // The acknowledgement's deadline, then a new connection and the resync.
        assert.isAtLeast(elapsed, timeout - 50)
        assert.isBelow(elapsed, timeout + 3000)
        console.log(
          `unacknowledged UNSUBSCRIBE: the next watch got its result ${elapsed} ms after it started (acknowledgement deadline ${timeout} ms)`
        )
      }),
    60_000
  )
})
