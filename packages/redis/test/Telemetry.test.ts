/**
 * Spans and metrics of the Redis layers on real redis-server processes, beyond the conformance
 * suite's telemetry cases (run on every backend): the server attributes, a retried store (a span
 * event per retry with Celery's line, the retry counters), and a watch whose subscriber
 * connection is killed (the reconnect and resync counters, delivered events).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Metric, Schedule, Stream } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { RetryLimitExceeded } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { SpanRecorder } from "@effect-celery/core/testing"
import * as RedisBackend from "@effect-celery/redis/RedisBackend"
import { rawClient } from "../../../test-support/RawRedis.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { failureOf, uid } from "./Expect.js"

const servicesFor = (server: RedisServer, options: BackendOptions) =>
  Effect.map(
    Layer.build(
      RedisBackend.layer(
        { host: server.host, port: server.port, connectTimeout: "1 second" },
        { metrics: true, ...options }
      )
    ),
    (ctx) => ({ backend: Context.get(ctx, ResultBackend), consumer: Context.get(ctx, ResultConsumer) })
  )

const count = (metric: Metric.Metric.Counter<number>, ...tags: ReadonlyArray<string>) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(metric, Telemetry.labels(...tags))), (s) => s.count)

const until = (check: () => boolean) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail("not yet" as const))).pipe(
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDie
  )

describe("Telemetry on Redis", () => {
  it.scopedLive(
    "store: server.address, server.port, db.namespace; a retried store has Celery's retry lines as span events (from its logs)",
    () => {
      const rec = SpanRecorder.make()
      return Effect.gen(function* () {
        const server = yield* redisServer()
        const { backend } = yield* servicesFor(server, {
          retryPolicy: { maxRetries: 3, intervalStart: 0.02, intervalStep: 0, intervalMax: 0.02 }
        })
        const id = uid("tel")
        yield* backend.store(id, "STARTED", null)
        const [ok] = rec.named(Telemetry.SpanName.store)
        assert.strictEqual(ok!.attributes.get("db.system.name"), "redis")
        assert.strictEqual(ok!.attributes.get("server.address"), server.host)
        assert.strictEqual(ok!.attributes.get("server.port"), server.port)
        assert.strictEqual(ok!.attributes.get("db.namespace"), "0")
        assert.strictEqual(ok!.attributes.get("celery.task.state"), "STARTED")

        const attemptsBefore = yield* count(Telemetry.retryAttempts, Telemetry.Attr.retryPolicy, "kombu")
        const giveUpsBefore = yield* count(
          Telemetry.retryGiveUps,
          Telemetry.Attr.retryPolicy,
          "kombu",
          Telemetry.Attr.retryReason,
          "MaxRetries"
        )
        yield* server.process.kill
        const error = yield* failureOf(backend.markAsDone(id, 1).pipe(Effect.withSpan("worker")))
        assert.instanceOf(error, RetryLimitExceeded)
        const failed = rec.named(Telemetry.SpanName.store)[1]!
        assert.strictEqual(SpanRecorder.parentOf(failed)?.name, "worker")
        assert.isTrue(failed.status._tag === "Ended" && Exit.isFailure(failed.status.exit))
        assert.strictEqual(failed.attributes.get("error.type"), "RetryLimitExceeded")
        assert.isString(failed.attributes.get("celery.error.reason"))
        assert.deepStrictEqual(
          rec.events(failed).map((e) => e.name),
          [
            "Connection to Redis lost: Retry (0/3) now.",
            "Connection to Redis lost: Retry (1/3) now.",
            "Connection to Redis lost: Retry (2/3) now."
          ]
        )
        assert.strictEqual(
          (yield* count(Telemetry.retryAttempts, Telemetry.Attr.retryPolicy, "kombu")) - attemptsBefore,
          3
        )
        assert.strictEqual(
          (yield* count(
            Telemetry.retryGiveUps,
            Telemetry.Attr.retryPolicy,
            "kombu",
            Telemetry.Attr.retryReason,
            "MaxRetries"
          )) - giveUpsBefore,
          1
        )
      }).pipe(Effect.provide(rec.layer))
    },
    30_000
  )

  it.scopedLive(
    "watch across a killed subscriber: one span for the subscription, reconnect and resync counted and on the span as events, states delivered as events",
    () => {
      const rec = SpanRecorder.make()
      return Effect.gen(function* () {
        const server = yield* redisServer()
        const admin = yield* rawClient(server)
        const { backend, consumer } = yield* servicesFor(server, {})
        const ids = [uid("w1"), uid("w2")]
        const reconnectsBefore = yield* count(Telemetry.subscriberReconnects)
        const resyncsBefore = yield* count(Telemetry.subscriberResyncs)
        const channelsBefore = (yield* Metric.value(Telemetry.subscribedChannels)).value
        const fiber = yield* Effect.fork(Stream.runCollect(consumer.watch(ids)))
        // Subscribed: the server sees both channels.
        yield* until(() => rec.named(Telemetry.SpanName.watch).length === 1)
        yield* Effect.promise(() =>
          admin.sendCommand(["PUBSUB", "NUMSUB", ...ids.map((id) => `celery-task-meta-${id}`)])
        ).pipe(
          Effect.flatMap((reply) =>
            String(reply)
              .split(",")
              .filter((_, i) => i % 2 === 1)
              .every((n) => n === "1")
              ? Effect.void
              : Effect.fail("no")
          ),
          Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("10 seconds"))),
          Effect.orDie
        )
        yield* backend.markAsDone(ids[0]!, 1)
        yield* Effect.promise(() => admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
        yield* backend.markAsDone(ids[1]!, 2)
        const items = yield* Fiber.join(fiber)
        assert.strictEqual(items.length, 2)
        assert.isAtLeast((yield* count(Telemetry.subscriberReconnects)) - reconnectsBefore, 1)
        assert.isAtLeast((yield* count(Telemetry.subscriberResyncs)) - resyncsBefore, 1)
        const [span] = rec.named(Telemetry.SpanName.watch)
        assert.strictEqual(span!.status._tag, "Ended")
        assert.strictEqual(span!.attributes.get("celery.task.count"), 2)
        const delivered = rec.events(span!).filter((e) => e.name === Telemetry.EventName.delivered)
        assert.deepStrictEqual(
          delivered.map((e) => e.attributes["celery.task.state"]),
          ["SUCCESS", "SUCCESS"]
        )
        // The reconnect shows in the trace: the loss, then the resync, before the last state (the
        // second task's, stored after the kill, delivered by the resync or after it).
        const subscriber = rec
          .events(span!)
          .filter(
            (e) => e.name === Telemetry.EventName.subscriberReconnect || e.name === Telemetry.EventName.subscriberResync
          )
        assert.isAtLeast(subscriber.length, 2)
        assert.strictEqual(subscriber[0]!.name, Telemetry.EventName.subscriberReconnect)
        assert.strictEqual(subscriber.at(-1)!.name, Telemetry.EventName.subscriberResync)
        for (let i = 1; i < subscriber.length; i++)
          assert.notStrictEqual(subscriber[i]!.name, subscriber[i - 1]!.name, "reconnect and resync alternate")
        assert.isTrue(subscriber.at(-1)!.time <= delivered.at(-1)!.time, "resynced before the last state is delivered")
        // The subscriber released both channels once the watch ended.
        yield* until(() => true)
        const channelsAfter = (yield* Metric.value(Telemetry.subscribedChannels)).value
        assert.isAtMost(channelsAfter - channelsBefore, 2)
      }).pipe(Effect.provide(rec.layer))
    },
    30_000
  )
})
