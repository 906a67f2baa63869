import { assert, describe, it, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Fiber, Layer, Option, Queue, Ref, Schedule, Stream } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import * as Keys from "@effect-celery/core/Keys"
import * as Meta from "@effect-celery/core/Meta"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as RedisClient from "@effect-celery/redis/RedisClient"
import { driverOf } from "../src/internal/driver.js"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import { redisServer } from "../../../test-support/RedisServer.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"

// ---------------------------------------------------------------------------------------------
// helpers

const Server = Context.GenericTag<RedisServer>("test/RedisServer")
const ServerLive = Layer.scoped(Server, redisServer())
const clientLayer = Layer.unwrapEffect(Effect.map(Server, (s) => RedisClient.layer({ host: s.host, port: s.port })))
const TestLayer = Layer.provideMerge(RedisResultConsumer.layer(), Layer.provideMerge(clientLayer, ServerLive))

let seq = 0
const uid = (name: string) => `${name}-${process.pid}-${Date.now().toString(36)}-${seq++}`

const encode = (taskId: string, state: string, result: unknown = null) =>
  Meta.encodeTaskMeta(Meta.make({ taskId, state, result, now: Date.now(), dateStyle: "offset" }))

/** What a worker does: SET + PUBLISH in one transaction (spec §4.1), on any key layout. */
const storeRaw = (key: string, raw: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) =>
    redis.commands([["MULTI"], ["SET", key, raw], ["PUBLISH", key, raw], ["EXEC"]])
  )

const store = (taskId: string, state: string, result: unknown = null) =>
  storeRaw(Keys.standard.task(taskId), encode(taskId, state, result))

const command = (...args: Array<string>) => Effect.flatMap(RedisClient.RedisClient, (redis) => redis.command(args))

const numsub = (taskId: string, layout: Keys.KeyLayout = Keys.standard) =>
  Effect.map(command("PUBSUB", "NUMSUB", layout.task(taskId)), (reply) => Number((reply as Array<unknown>)[1]))

/** The server's own view as the readiness signal: poll (no fixed sleep) until it holds. */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.flatMap(check, (ok) => (ok ? Effect.void : Effect.fail("not yet" as const))).pipe(
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDie
  )

type Item = Either.Either<Meta.TaskMeta, unknown>

/** Run a watch in the background, its items into a queue. */
const start = (stream: Stream.Stream<Item, unknown>) =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Item>()
    const fiber = yield* stream.pipe(
      Stream.runForEach((item) => Queue.offer(queue, item)),
      Effect.fork
    )
    return { queue, fiber }
  })

const statusOf = (item: Item) => (Either.isRight(item) ? `${item.right.taskId}:${item.right.status}` : "Left")

const takeStatus = (queue: Queue.Queue<Item>) => Effect.map(Queue.take(queue), statusOf)

// ---------------------------------------------------------------------------------------------

describe("RedisResultConsumer", () => {
  layer(TestLayer, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("emits the stored state, then each change in order, and ends on the ready state", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("order")
        yield* store(id, "STARTED")
        const { fiber, queue } = yield* start(consumer.watch([id]))
        assert.strictEqual(yield* takeStatus(queue), `${id}:STARTED`)
        yield* store(id, "PROGRESS", { done: 1 })
        const progress = yield* Queue.take(queue)
        assert.isTrue(Either.isRight(progress))
        if (Either.isRight(progress)) assert.deepStrictEqual(progress.right.result, { done: 1 })
        yield* store(id, "SUCCESS", 42)
        const last = yield* Queue.take(queue)
        yield* Fiber.join(fiber)
        assert.isTrue(Either.isRight(last) && last.right.status === "SUCCESS" && last.right.result === 42)
        assert.strictEqual(yield* Queue.size(queue), 0)
        // The stream's end waited for the UNSUBSCRIBE acknowledgement.
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.effect("a result stored before the watch is emitted once and ends the stream", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("before")
        yield* store(id, "SUCCESS", "done")
        const items = yield* Stream.runCollect(consumer.watch([id]))
        assert.deepStrictEqual(Chunk.toReadonlyArray(items).map(statusOf), [`${id}:SUCCESS`])
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.effect("changes published after the subscription are delivered without a stored state first", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("after")
        const { fiber, queue } = yield* start(consumer.watch([id]))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* store(id, "STARTED")
        yield* store(id, "SUCCESS", 1)
        yield* Fiber.join(fiber)
        const items = yield* Queue.takeAll(queue)
        assert.deepStrictEqual(Chunk.toReadonlyArray(items).map(statusOf), [`${id}:STARTED`, `${id}:SUCCESS`])
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.effect("watches several tasks; each is released at its ready state; the stream ends with the last", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const [a, b, c] = [uid("multi-a"), uid("multi-b"), uid("multi-c")] as const
        yield* store(a, "SUCCESS", "a")
        yield* store(b, "STARTED")
        const { fiber, queue } = yield* start(consumer.watch([a, b, c, b]))
        const first = [yield* takeStatus(queue), yield* takeStatus(queue)].sort()
        assert.deepStrictEqual(first, [`${a}:SUCCESS`, `${b}:STARTED`].sort())
        // a is done: its channel is given back while b and c are still watched.
        yield* until(Effect.map(numsub(a), (n) => n === 0))
        assert.strictEqual(yield* numsub(b), 1)
        assert.strictEqual(yield* numsub(c), 1)
        yield* store(c, "FAILURE", null)
        assert.strictEqual(yield* takeStatus(queue), `${c}:FAILURE`)
        yield* until(Effect.map(numsub(c), (n) => n === 0))
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* store(b, "REVOKED", null)
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(queue)).map(statusOf), [`${b}:REVOKED`])
        assert.deepStrictEqual([yield* numsub(a), yield* numsub(b), yield* numsub(c)], [0, 0, 0])
      })
    )

    it.effect("the same stored bytes are emitted once; new bytes for the same state are a change", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("dedupe")
        const started = encode(id, "STARTED")
        yield* storeRaw(Keys.standard.task(id), started)
        const { fiber, queue } = yield* start(consumer.watch([id]))
        assert.strictEqual(yield* takeStatus(queue), `${id}:STARTED`)
        // The same bytes again (e.g. a retried write): not a change.
        yield* storeRaw(Keys.standard.task(id), started)
        yield* store(id, "PROGRESS", 1)
        yield* store(id, "PROGRESS", 2)
        yield* store(id, "SUCCESS", 3)
        yield* Fiber.join(fiber)
        const rest = Chunk.toReadonlyArray(yield* Queue.takeAll(queue))
        assert.deepStrictEqual(
          rest.map((i) => (Either.isRight(i) ? i.right.result : "Left")),
          [1, 2, 3]
        )
      })
    )

    it.effect("a value that does not decode is a Left and does not stop the watch", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("corrupt")
        yield* storeRaw(Keys.standard.task(id), "{not json")
        const { fiber, queue } = yield* start(consumer.watch([id]))
        const first = yield* Queue.take(queue)
        assert.isTrue(Either.isLeft(first))
        if (Either.isLeft(first)) assert.strictEqual((first.left as { id: string }).id, id)
        yield* store(id, "SUCCESS", null)
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(queue)).map(statusOf), [`${id}:SUCCESS`])
      })
    )

    it.effect(
      "follow keeps emitting after the ready state until interrupted, then unsubscribes (in the background)",
      () =>
        Effect.gen(function* () {
          const consumer = yield* ResultConsumer
          const id = uid("follow")
          yield* store(id, "SUCCESS", 1)
          const { fiber, queue } = yield* start(consumer.watch([id], { follow: true }))
          assert.strictEqual(yield* takeStatus(queue), `${id}:SUCCESS`)
          yield* store(id, "FAILURE", null)
          assert.strictEqual(yield* takeStatus(queue), `${id}:FAILURE`)
          yield* store(id, "SUCCESS", 2)
          const again = yield* Queue.take(queue)
          assert.isTrue(Either.isRight(again) && again.right.result === 2)
          assert.strictEqual(yield* numsub(id), 1)
          yield* Fiber.interrupt(fiber)
          yield* until(Effect.map(numsub(id), (n) => n === 0))
        })
    )

    it.effect("concurrent watches of one id share one subscription and each gets every event", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("shared")
        yield* store(id, "STARTED")
        const w1 = yield* start(consumer.watch([id]))
        const w2 = yield* start(consumer.watch([id]))
        const w3 = yield* start(consumer.watch([id]))
        for (const w of [w1, w2, w3]) assert.strictEqual(yield* takeStatus(w.queue), `${id}:STARTED`)
        assert.strictEqual(yield* numsub(id), 1)
        // One leaves: the channel stays subscribed for the others.
        yield* Fiber.interrupt(w3.fiber)
        assert.strictEqual(yield* numsub(id), 1)
        yield* store(id, "PROGRESS", 1)
        for (const w of [w1, w2]) assert.strictEqual(yield* takeStatus(w.queue), `${id}:PROGRESS`)
        yield* store(id, "SUCCESS", 1)
        yield* Fiber.join(w1.fiber)
        yield* Fiber.join(w2.fiber)
        for (const w of [w1, w2]) {
          assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(w.queue)).map(statusOf), [`${id}:SUCCESS`])
        }
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.effect("a watch that starts while another holds the channel gets the current state", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("late")
        const w1 = yield* start(consumer.watch([id]))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* store(id, "STARTED")
        assert.strictEqual(yield* takeStatus(w1.queue), `${id}:STARTED`)
        const w2 = yield* start(consumer.watch([id]))
        assert.strictEqual(yield* takeStatus(w2.queue), `${id}:STARTED`)
        yield* store(id, "SUCCESS", null)
        yield* Fiber.join(w1.fiber)
        yield* Fiber.join(w2.fiber)
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(w1.queue)).map(statusOf), [`${id}:SUCCESS`])
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(w2.queue)).map(statusOf), [`${id}:SUCCESS`])
      })
    )

    it.effect("interrupting a watch UNSUBSCRIBEs everything it held, in the background", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const prefix = uid("interrupt")
        const ids = Array.from({ length: 50 }, (_, i) => `${prefix}-${i}`)
        yield* store(ids[0]!, "STARTED")
        const { fiber, queue } = yield* start(consumer.watch(ids))
        assert.strictEqual(yield* takeStatus(queue), `${ids[0]}:STARTED`)
        const channels = yield* command("PUBSUB", "CHANNELS", `${Keys.TASK_KEYPREFIX}${prefix}-*`)
        assert.strictEqual((channels as Array<string>).length, 50)
        yield* Fiber.interrupt(fiber)
        yield* until(
          Effect.map(
            command("PUBSUB", "CHANNELS", `${Keys.TASK_KEYPREFIX}${prefix}-*`),
            (left) => (left as Array<string>).length === 0
          )
        )
      })
    )

    it.effect("an empty watch ends at once; a re-watch after the end subscribes again", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        assert.strictEqual(Chunk.size(yield* Stream.runCollect(consumer.watch([]))), 0)
        const id = uid("rewatch")
        yield* store(id, "SUCCESS", 1)
        assert.strictEqual(Chunk.size(yield* Stream.runCollect(consumer.watch([id]))), 1)
        yield* store(id, "STARTED")
        const { fiber, queue } = yield* start(consumer.watch([id]))
        assert.strictEqual(yield* takeStatus(queue), `${id}:STARTED`)
        yield* store(id, "SUCCESS", 2)
        yield* Fiber.join(fiber)
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.scoped("watches that start while a task is being written see an ordered, duplicate-free history", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const id = uid("window")
        const written = yield* Ref.make(0)
        const K = 400
        // A worker of its own, writing in pipelined bursts so several writes land inside one
        // watch's subscribe → read → barrier window.
        const worker = yield* Effect.flatMap(RedisClient.RedisClient, (redis) => driverOf(redis).connect)
        const key = Keys.standard.task(id)
        const write = (i: number) => {
          const raw = encode(id, i > K ? "SUCCESS" : "PROGRESS", i)
          return worker.multi().set(key, raw).publish(key, raw).exec()
        }
        const writer = yield* Effect.gen(function* () {
          for (let i = 1; i <= K + 1; i += 8) {
            const burst = Array.from({ length: Math.min(8, K + 2 - i) }, (_, j) => i + j)
            yield* Effect.promise(() => Promise.all(burst.map(write)))
            yield* Ref.set(written, burst.at(-1)!)
          }
        }).pipe(Effect.fork)
        // Start a watch every few writes, so their subscribe/read windows overlap the writes.
        const watches: Array<Fiber.RuntimeFiber<Chunk.Chunk<Item>, unknown>> = []
        for (let k = 0; k < 20; k++) {
          const target = k * 15
          yield* until(Effect.map(Ref.get(written), (n) => n >= target))
          watches.push(yield* Effect.fork(Stream.runCollect(consumer.watch([id]))))
        }
        yield* Fiber.join(writer)
        for (const w of watches) {
          const results = Chunk.toReadonlyArray(yield* Fiber.join(w)).map((i) =>
            Either.isRight(i) ? Number(i.right.result) : NaN
          )
          assert.strictEqual(results.at(-1), K + 1)
          for (let i = 1; i < results.length; i++) {
            assert.isTrue(results[i]! > results[i - 1]!, `ordered without repeats: ${results.join(",")}`)
          }
        }
        assert.strictEqual(yield* numsub(id), 0)
      })
    )

    it.effect("many tasks in one watch: SUBSCRIBE in chunks, every result delivered once", () =>
      Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        const prefix = uid("many")
        const ids = Array.from({ length: 3000 }, (_, i) => `${prefix}-${i}`)
        // A third done before the watch, the rest after it is subscribed.
        yield* Effect.forEach(ids.slice(0, 1000), (id) => store(id, "SUCCESS", id), { concurrency: 50, discard: true })
        const { fiber, queue } = yield* start(consumer.watch(ids))
        yield* until(Effect.map(numsub(ids[2999]!), (n) => n === 1))
        yield* Effect.forEach(ids.slice(1000), (id) => store(id, "SUCCESS", id), { concurrency: 50, discard: true })
        yield* Fiber.join(fiber)
        const items = Chunk.toReadonlyArray(yield* Queue.takeAll(queue))
        assert.strictEqual(items.length, 3000)
        assert.strictEqual(new Set(items.map(statusOf)).size, 3000)
        assert.isTrue(items.every((i) => Either.isRight(i) && i.right.result === i.right.taskId))
      })
    )
  })

  it.scopedLive("uses the global key prefix for keys and channels", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const options: BackendOptions = { keys: { globalKeyprefix: "app:" } }
      const ctx = yield* Layer.build(
        RedisResultConsumer.layer(options).pipe(
          Layer.provideMerge(RedisClient.layer({ host: server.host, port: server.port }))
        )
      )
      const layout = Keys.make(options.keys)
      const id = uid("prefixed")
      return yield* Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        yield* storeRaw(layout.task(id), encode(id, "STARTED"))
        const { fiber, queue } = yield* start(consumer.watch([id]))
        assert.strictEqual(yield* takeStatus(queue), `${id}:STARTED`)
        assert.strictEqual(yield* numsub(id, layout), 1)
        assert.strictEqual(yield* numsub(id), 0)
        yield* storeRaw(layout.task(id), encode(id, "SUCCESS"))
        yield* Fiber.join(fiber)
        assert.strictEqual(yield* numsub(id, layout), 0)
      }).pipe(Effect.provide(ctx))
    })
  )

  it.scopedLive("closes the idle subscriber connection and opens a new one for the next watch", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const ctx = yield* Layer.build(
        RedisResultConsumer.layer({}, { idleTimeToLive: "50 millis" }).pipe(
          Layer.provideMerge(RedisClient.layer({ host: server.host, port: server.port }))
        )
      )
      const clients = Effect.map(
        command("CLIENT", "LIST"),
        (s) =>
          String(s)
            .split("\n")
            .filter((l) => l.trim() !== "").length
      )
      return yield* Effect.gen(function* () {
        const consumer = yield* ResultConsumer
        // Lazy: only the command connection until something is watched.
        assert.strictEqual(yield* clients, 1)
        const id = uid("idle")
        yield* store(id, "SUCCESS", 1)
        assert.strictEqual(Chunk.size(yield* Stream.runCollect(consumer.watch([id]))), 1)
        // Nothing watched: the subscriber connection goes away on its own.
        assert.strictEqual(yield* numsub(id), 0)
        yield* until(Effect.map(clients, (n) => n === 1))
        const id2 = uid("idle")
        yield* store(id2, "STARTED")
        const { fiber, queue } = yield* start(consumer.watch([id2]))
        assert.strictEqual(yield* takeStatus(queue), `${id2}:STARTED`)
        assert.strictEqual(yield* clients, 2)
        yield* store(id2, "SUCCESS")
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(ctx))
    })
  )
})
