/**
 * Write-side faults of the Redis backend on real redis-server processes (one per test, since the
 * tests kill them): a server killed under concurrent writes and restarted within the retry budget,
 * a server left down, corrupt values.
 *
 * Durability choice for the restart test: the harness's servers persist nothing, so a restart
 * would empty them and "every acknowledged write is readable afterwards" could only be checked
 * for writes acknowledged after the restart. Instead the server runs with `appendonly yes` and
 * `appendfsync always` (Redis acknowledges a write only once it is on disk, and reloads the AOF on
 * start), so EVERY acknowledged write, before, during and after the outage, must be readable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Either, Exit, HashSet, Layer, Ref, Stream } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { ConnectionError, DecodeError, RemoteException, RetryLimitExceeded } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisClient } from "@effect-celery/redis"
import * as RedisResultBackend from "@effect-celery/redis/RedisResultBackend"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import type { RawClient } from "../../../test-support/RawRedis.js"
import { rawClient } from "../../../test-support/RawRedis.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { capturingLogs, failureOf, uid } from "./Expect.js"

/** The backend (with its client and consumer) over `server`, built in the current scope. */
const backendFor = (server: RedisServer, options: BackendOptions) =>
  Effect.map(
    Layer.build(
      RedisResultBackend.layer(options).pipe(
        Layer.provide(RedisResultConsumer.layer(options)),
        Layer.provide(RedisClient.layer({ host: server.host, port: server.port, connectTimeout: "1 second" }))
      )
    ),
    (context) => context.unsafeMap.get(ResultBackend.key) as ResultBackend
  )

const commandCalls = (raw: RawClient, command: string) =>
  Effect.promise(() => raw.info("commandstats")).pipe(
    Effect.map((info) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0))
  )

describe("RedisResultBackend faults", () => {
  it.scopedLive(
    "server killed under concurrent writes and restarted within the budget: no acknowledged write is lost",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] })
        const logs = yield* capturingLogs("Connection to Redis lost")
        // A budget of ~10 s (200 retries, 10–50 ms apart); the outage below lasts one restart.
        const backend = yield* backendFor(server, {
          retryPolicy: { maxRetries: 200, intervalStart: 0.01, intervalStep: 0.01, intervalMax: 0.05 }
        })
        const writers = 16
        const perWriter = 40
        const acked = yield* Ref.make(HashSet.empty<string>())
        const enoughBefore = yield* Deferred.make<void>()
        const value = (id: string) => ({ id, payload: "x".repeat(64) })
        const writer = (w: number) =>
          Effect.forEach(
            Array.from({ length: perWriter }, (_, i) => `${uid(`fault-w${w}`)}-${i}`),
            (id) =>
              backend.markAsDone(id, value(id)).pipe(
                Effect.zipRight(Ref.updateAndGet(acked, HashSet.add(id))),
                Effect.tap((set) =>
                  HashSet.size(set) >= 100 ? Deferred.succeed(enoughBefore, undefined) : Effect.void
                )
              ),
            { discard: true }
          )
        const all = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: writers }, (_, w) => w),
            writer,
            { concurrency: "unbounded", discard: true }
          ).pipe(Effect.provide(logs.layer))
        )
        // Kill once writes are flowing, restart once a writer has seen the loss (retry log line).
        yield* Deferred.await(enoughBefore)
        yield* server.process.kill
        yield* Deferred.await(logs.seen)
        yield* server.process.restart
        const exit = yield* all.await
        assert.isTrue(
          Exit.isSuccess(exit),
          `every write succeeded in the end: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`
        )
        const ids = Array.from(yield* Ref.get(acked))
        assert.lengthOf(ids, writers * perWriter)
        assert.isTrue(
          logs.messages.some((m) => /^Connection to Redis lost: Retry \(\d+\/200\) /.test(m)),
          "Celery's retry line was logged"
        )
        // Read back through an independent connection: every acknowledged write is there, intact.
        const raw = yield* rawClient(server)
        const stored = yield* Effect.promise(() => raw.mGet(ids.map((id) => `celery-task-meta-${id}`)))
        ids.forEach((id, i) => {
          const meta = JSON.parse(stored[i] ?? "null")
          assert.isNotNull(meta, `${id} survived`)
          assert.strictEqual(meta.status, "SUCCESS")
          assert.deepStrictEqual(meta.result, value(id))
        })
      }),
    60_000
  )

  it.scopedLive(
    "server left down: the store gives up with RetryLimitExceeded after the budget, then recovers",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const logs = yield* capturingLogs("Connection to Redis lost")
        const backend = yield* backendFor(server, {
          retryPolicy: { maxRetries: 3, intervalStart: 0.05, intervalStep: 0, intervalMax: 0.05 }
        })
        const id = uid("down")
        yield* backend.store(id, "STARTED", null)
        yield* server.process.kill
        const start = Date.now()
        const error = yield* failureOf(backend.markAsDone(id, 1).pipe(Effect.provide(logs.layer)))
        const elapsed = Date.now() - start
        assert.instanceOf(error, RetryLimitExceeded)
        assert.strictEqual(error.retries, 3)
        assert.instanceOf(error.lastCause, ConnectionError)
        assert.isAtLeast(elapsed, 140, "three sleeps of 50 ms")
        assert.deepStrictEqual(
          logs.messages.filter((m) => m.startsWith("Connection to Redis lost")),
          [
            "Connection to Redis lost: Retry (0/3) now.",
            "Connection to Redis lost: Retry (1/3) now.",
            "Connection to Redis lost: Retry (2/3) now."
          ]
        )
        // Reads and chord parts are not retried (as Celery): they fail at once with ConnectionError.
        assert.instanceOf(yield* failureOf(backend.get(id)), ConnectionError)
        assert.instanceOf(
          yield* failureOf(backend.onChordPartReturn({ groupId: uid("g"), taskId: id, groupIndex: 0 }, "SUCCESS", 1)),
          ConnectionError
        )
        // Back up: the same backend works again without being rebuilt.
        yield* server.process.restart
        yield* backend.markAsDone(id, 2)
        assert.strictEqual((yield* backend.get(id)).result, 2)
      }),
    30_000
  )

  it.scopedLive(
    "alwaysRetry: reads are retried too, then give up with RetryLimitExceeded",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const backend = yield* backendFor(server, {
          retryPolicy: { maxRetries: 1, intervalStart: 0.01, intervalStep: 0, intervalMax: 0.01 },
          alwaysRetry: { maxRetries: 2, baseSleepMillis: 1, maxSleepMillis: 5 }
        })
        yield* server.process.kill
        const error = yield* failureOf(backend.get(uid("always")))
        assert.instanceOf(error, RetryLimitExceeded)
        assert.strictEqual(error.retries, 2)
        const stored = yield* failureOf(backend.markAsDone(uid("always"), 1))
        assert.instanceOf(stored, RetryLimitExceeded)
      }),
    30_000
  )

  // No reconnect can help a client whose layer was closed: the retry policies (here a long one)
  // must not spend their budget on it.
  it.scopedLive("after the backend's layer is closed, a store or get fails at once with ConnectionError Shutdown", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const options: BackendOptions = {
        retryPolicy: { maxRetries: 100, intervalStart: 1, intervalStep: 1, intervalMax: 1 },
        alwaysRetry: { maxRetries: 100, baseSleepMillis: 1000, maxSleepMillis: 1000 }
      }
      const backend = yield* Effect.scoped(backendFor(server, options))
      const stored = yield* failureOf(backend.markAsDone(uid("closed"), 1))
      assert.instanceOf(stored, ConnectionError)
      assert.strictEqual(stored.reason, "Shutdown")
      const read = yield* failureOf(backend.get(uid("closed")))
      assert.instanceOf(read, ConnectionError)
      assert.strictEqual(read.reason, "Shutdown")
    })
  )

  it.scopedLive(
    "a corrupt value fails only its own task with DecodeError, and is never retried",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const raw = yield* rawClient(server)
        const backend = yield* backendFor(server, { alwaysRetry: true })
        const [good1, corrupt, good2] = [uid("good1"), uid("corrupt"), uid("good2")]
        yield* backend.markAsDone(good1, 1)
        yield* backend.markAsDone(good2, 2)
        yield* Effect.promise(() => raw.set(`celery-task-meta-${corrupt}`, '{"status": "SUCCESS", "result": '))
        const getsBefore = yield* commandCalls(raw, "get")
        const error = yield* failureOf(backend.get(corrupt))
        assert.instanceOf(error, DecodeError)
        assert.strictEqual(error.id, corrupt)
        assert.strictEqual((yield* commandCalls(raw, "get")) - getsBefore, 1, "one GET: decode errors are not retried")
        assert.strictEqual((yield* backend.get(good1)).result, 1)
        const items = Array.from(
          yield* Stream.runCollect(backend.getMany([good1, corrupt, good2], { timeout: "10 seconds" }))
        )
        assert.deepStrictEqual(
          items.map((e) => (Either.isRight(e) ? e.right.taskId : `left:${e.left.id}`)),
          [good1, `left:${corrupt}`, good2]
        )
        // The store guard cannot decode it either: a value that starts like a SUCCESS meta is kept (the
        // guard errs on the side of never overwriting a success), any other corrupt value is replaced.
        const exc = new RemoteException({ excType: "ValueError", excMessage: ["x"], excModule: "builtins" })
        yield* backend.markAsFailure(corrupt, exc)
        assert.instanceOf(yield* failureOf(backend.get(corrupt)), DecodeError)
        const garbage = uid("garbage")
        yield* Effect.promise(() => raw.set(`celery-task-meta-${garbage}`, "\x00\xff not json"))
        yield* backend.markAsFailure(garbage, exc)
        assert.deepStrictEqual((yield* backend.get(garbage)).result, exc)
      }),
    30_000
  )
})
