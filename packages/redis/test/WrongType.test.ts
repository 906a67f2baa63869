/**
 * One rule for a task key holding a non-string (a hash or a list written by something else): every
 * read reports it as a `DecodeError` naming the task and the Redis type, and the other tasks of a
 * batch are still delivered. `get` (alone, as a GET, or coalesced into an MGET), `getAll` and
 * `getMany` (MGET, then Pub/Sub), `waitFor` and `watch` (the subscriber's resync MGET) alike; none
 * waits for such a key as if it were pending.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Fiber, Layer, Queue, Stream } from "effect"
import type { DecodeError } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import type { TaskMeta } from "@effect-celery/core/Meta"
import { itemTaskId, ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import { RedisBackend } from "@effect-celery/redis"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { uid } from "./Expect.js"

const key = Keys.standard.task

const setup = Effect.gen(function* () {
  const server = yield* redisServer()
  const raw = yield* rawClient(server)
  const ctx = yield* Layer.build(RedisBackend.layer({ host: "127.0.0.1", port: server.port }))
  const [hash, list, done, later] = ["hash", "list", "done", "later"].map(uid) as [string, string, string, string]
  yield* Effect.promise(() => raw.hSet(key(hash), "status", "SUCCESS"))
  yield* Effect.promise(() => raw.rPush(key(list), "x"))
  const backend = Context.get(ctx, ResultBackend)
  yield* backend.markAsDone(done, "done")
  return { backend, consumer: Context.get(ctx, ResultConsumer), raw, hash, list, done, later }
})

const wrongType = (
  item: Either.Either<TaskMeta, { readonly _tag: string; readonly message: string; readonly id?: string }> | undefined,
  taskId: string,
  type: string
): void => {
  assert.isDefined(item)
  assert.isTrue(item !== undefined && Either.isLeft(item), `${taskId}: a Left`)
  if (item === undefined || Either.isRight(item)) return
  assertWrongType(item.left, taskId, type)
}

const assertWrongType = (
  error: { readonly _tag: string; readonly message: string; readonly id?: string },
  taskId: string,
  type: string
): void => {
  assert.strictEqual(error._tag, "DecodeError", error.message)
  assert.strictEqual(error.id, taskId)
  assert.include(error.message, `${key(taskId)} holds a Redis ${type}, not a Celery result`)
}

describe("a non-string value at a task key", () => {
  it.scopedLive(
    "get: a DecodeError naming the task, alone (GET → WRONGTYPE) and coalesced (MGET → nil) alike",
    () =>
      Effect.gen(function* () {
        const { backend, done, hash, list } = yield* setup
        assertWrongType(yield* Effect.flip(backend.get(hash)), hash, "hash")
        const [h, l, d] = yield* Effect.all(
          [backend.get(hash), backend.get(list), backend.get(done)].map(Effect.either),
          {
            concurrency: "unbounded"
          }
        )
        wrongType(h, hash, "hash")
        wrongType(l, list, "list")
        assert.isTrue(d !== undefined && Either.isRight(d) && d.right.result === "done")
        // A missing key is still PENDING.
        assert.strictEqual((yield* backend.get(uid("missing"))).status, "PENDING")
      }),
    30_000
  )

  it.scopedLive(
    "getAll and getMany: the task's DecodeError as its item, the others delivered, nothing waited for it",
    () =>
      Effect.gen(function* () {
        const { backend, done, hash, later, list } = yield* setup
        const all = yield* backend.getAll([done, hash, list], { timeout: "5 seconds" })
        assert.isTrue(Either.isRight(all[0]!))
        wrongType(all[1], hash, "hash")
        wrongType(all[2], list, "list")
        // getMany: the wrong-typed ones at the first read, a pending one when it is stored.
        const many = yield* Effect.fork(
          Stream.runCollect(backend.getMany([hash, later, done], { timeout: "5 seconds" }))
        )
        yield* backend.markAsDone(later, "later")
        const items = Chunk.toArray(yield* Fiber.join(many))
        assert.sameMembers(items.map(itemTaskId), [hash, later, done])
        wrongType(
          items.find((i) => itemTaskId(i) === hash),
          hash,
          "hash"
        )
      }),
    30_000
  )

  it.scopedLive(
    "waitFor: fails at once with the DecodeError, not a TimeoutError after its timeout",
    () =>
      Effect.gen(function* () {
        const { backend, hash, list } = yield* setup
        const started = Date.now()
        assertWrongType(yield* Effect.flip(backend.waitFor(hash, { timeout: "10 seconds" })), hash, "hash")
        assertWrongType(yield* Effect.flip(backend.waitFor(list)), list, "list")
        assert.isBelow(Date.now() - started, 6000, "no wait for the 10 s timeout")
      }),
    30_000
  )

  it.scopedLive(
    "watch: the DecodeError as the task's item, once; the other tasks delivered and followed",
    () =>
      Effect.gen(function* () {
        const { backend, consumer, done, hash, later } = yield* setup
        const queue = yield* Queue.unbounded<Either.Either<TaskMeta, DecodeError>>()
        const fiber = yield* Effect.fork(
          Stream.runForEach(consumer.watch([hash, done, later]), (item) => Queue.offer(queue, item))
        )
        const take = (n: number) =>
          Effect.timeoutFail(Queue.takeBetween(queue, n, n), {
            duration: "10 seconds",
            onTimeout: () => "watch: no item"
          })
        // The ready one at the first read, and the wrong-typed one after its check.
        const first = Chunk.toArray(yield* take(2))
        yield* backend.markAsDone(later, "later")
        const seen = [...first, ...Chunk.toArray(yield* take(1))]
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Queue.size(queue), 0, "the wrong type was reported once")
        assert.deepStrictEqual(seen.map(itemTaskId).sort(), [done, hash, later].sort())
        wrongType(
          seen.find((i) => itemTaskId(i) === hash),
          hash,
          "hash"
        )
      }),
    30_000
  )
})
