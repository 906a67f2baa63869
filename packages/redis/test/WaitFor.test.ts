/**
 * `waitFor` over this package's consumer takes a shortcut (no Stream, no wait for the UNSUBSCRIBE
 * acknowledgement): these check that it keeps `watch`'s guarantees — shared channels, no
 * subscription left behind, resync after a lost connection, interruption, undecodable values.
 */
import { assert, describe, layer } from "@effect/vitest"
import type { Duration } from "effect"
import { Cause, Context, Effect, Either, Exit, Fiber, Layer, Queue, Schedule, Stream, Supervisor } from "effect"
import * as Keys from "@effect-celery/core/Keys"
import * as Meta from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as RedisClient from "@effect-celery/redis/RedisClient"
import * as RedisResultBackend from "@effect-celery/redis/RedisResultBackend"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import { redisServer } from "../../../test-support/RedisServer.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"

const Server = Context.GenericTag<RedisServer>("test/RedisServer")
const ServerLive = Layer.scoped(Server, redisServer())
const clientLayer = Layer.unwrapEffect(Effect.map(Server, (s) => RedisClient.layer({ host: s.host, port: s.port })))
const TestLayer = RedisResultBackend.layer().pipe(
  Layer.provideMerge(RedisResultConsumer.layer()),
  Layer.provideMerge(clientLayer),
  Layer.provideMerge(ServerLive)
)

let seq = 0
const uid = (name: string) => `${name}-${process.pid}-${Date.now().toString(36)}-${seq++}`

/** A worker's write: SET + PUBLISH of the same bytes in one transaction. */
const storeRaw = (taskId: string, raw: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) => {
    const key = Keys.standard.task(taskId)
    return redis.commands([["MULTI"], ["SET", key, raw], ["PUBLISH", key, raw], ["EXEC"]])
  })

const store = (taskId: string, state: string, result: unknown = null) =>
  storeRaw(taskId, Meta.encodeTaskMeta(Meta.make({ taskId, state, result, now: Date.now(), dateStyle: "offset" })))

const command = (...args: Array<string>) => Effect.flatMap(RedisClient.RedisClient, (redis) => redis.command(args))

const numsub = (taskId: string) =>
  Effect.map(command("PUBSUB", "NUMSUB", Keys.standard.task(taskId)), (reply) => Number((reply as Array<unknown>)[1]))

const channels = (pattern: string) =>
  Effect.map(command("PUBSUB", "CHANNELS", pattern), (reply) => reply as Array<string>)

/** The server's own view as the readiness signal: poll (no fixed sleep) until it holds. */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.flatMap(check, (ok) => (ok ? Effect.void : Effect.fail("not yet" as const))).pipe(
    Effect.retry(Schedule.spaced("2 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDie
  )

describe("waitFor over RedisResultConsumer", () => {
  layer(TestLayer, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("returns the SUCCESS after intermediate states; its channel is released afterwards", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("plain")
        const fiber = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* store(id, "STARTED")
        yield* store(id, "SUCCESS", 7)
        const meta = yield* Fiber.join(fiber)
        assert.strictEqual(meta.status, "SUCCESS")
        assert.strictEqual(meta.result, 7)
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    it.effect("interrupted: the channel is released in the background (the interruption does not wait for it)", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("interrupt")
        const fiber = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* Fiber.interrupt(fiber)
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    it.effect("timeouts fork no fiber per wait; each wait times out at its own deadline, in order", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const supervisor = yield* Supervisor.track
        const ended: Array<string> = []
        const wait = (name: string, timeout: Duration.DurationInput) =>
          Effect.fork(
            Effect.supervised(
              backend.waitFor(uid(name), { timeout }).pipe(Effect.ensuring(Effect.sync(() => ended.push(name)))),
              supervisor
            )
          )
        // A long deadline first, then shorter ones: the shared timer must wake early for them.
        const long = yield* wait("long", "10 seconds")
        const waits = [
          yield* wait("300ms", "300 millis"),
          yield* wait("100ms", "100 millis"),
          yield* wait("200ms", "200 millis")
        ]
        assert.strictEqual((yield* supervisor.value).length, 0)
        for (const fiber of waits) {
          const error = yield* Effect.flip(Fiber.join(fiber)).pipe(
            Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => "late" })
          )
          assert.strictEqual(error._tag, "TimeoutError")
        }
        assert.deepStrictEqual(ended, ["100ms", "200ms", "300ms"])
        yield* Fiber.interrupt(long)
        assert.deepStrictEqual(ended, ["100ms", "200ms", "300ms", "long"])
      })
    )

    // waitFor returns with its release still pending, and the driver sends releases and new
    // subscriptions back to back: a channel held again before its UNSUBSCRIBE went out must stay.
    it.effect("a task watched again the moment its wait returned keeps its subscription", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const consumer = yield* ResultConsumer
        const id = uid("again")
        const other = uid("again-other")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        const seen = yield* Queue.unbounded<string>()
        // Woken, the same fiber watches `id` again (with `follow`) and waits for another task: one
        // driver step releases nothing, re-reads `id` and subscribes `other`.
        const next = yield* Effect.fork(
          Effect.zipRight(
            Fiber.join(waiting),
            Effect.zipRight(
              Effect.forkScoped(
                Stream.runForEach(consumer.watch([id], { follow: true }), (item) =>
                  Either.isRight(item) ? Queue.offer(seen, item.right.status) : Effect.void
                )
              ),
              backend.waitFor(other, { timeout: "10 seconds" })
            )
          ).pipe(Effect.scoped)
        )
        yield* store(id, "SUCCESS", 1)
        assert.strictEqual(yield* Queue.take(seen), "SUCCESS")
        yield* until(Effect.map(numsub(other), (n) => n === 1))
        // Still subscribed to `id`: a later write (a re-delivery, say) reaches the follow watch.
        assert.strictEqual(yield* numsub(id), 1)
        yield* store(id, "REVOKED")
        assert.strictEqual(yield* Queue.take(seen), "REVOKED")
        yield* store(other, "SUCCESS", 2)
        assert.strictEqual((yield* Fiber.join(next)).result, 2)
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    it.effect("shares the channel with a watch and another waitFor: each gets its states, nothing is left", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const consumer = yield* ResultConsumer
        const id = uid("shared")
        const queue = yield* Queue.unbounded<string>()
        const watch = yield* consumer.watch([id]).pipe(
          Stream.runForEach((item) => Queue.offer(queue, Either.isRight(item) ? item.right.status : "Left")),
          Effect.fork
        )
        const a = yield* Effect.fork(backend.waitFor(id))
        const b = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* store(id, "STARTED")
        // The watch saw STARTED, so every sink is synced and routed before the final write.
        assert.strictEqual(yield* Queue.take(queue), "STARTED")
        yield* store(id, "SUCCESS", "x")
        assert.strictEqual((yield* Fiber.join(a)).result, "x")
        assert.strictEqual((yield* Fiber.join(b)).result, "x")
        yield* Fiber.join(watch)
        assert.deepStrictEqual(yield* Queue.takeAll(queue).pipe(Effect.map((c) => Array.from(c))), ["SUCCESS"])
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    it.effect("300 concurrent waits, results stored before and after they subscribe, in reverse order", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const prefix = uid("many")
        const ids = Array.from({ length: 300 }, (_, i) => `${prefix}-${i}`)
        // A third are done before anyone waits (the read after SUBSCRIBE finds them).
        yield* Effect.forEach(ids.slice(0, 100), (id, i) => store(id, "SUCCESS", i), { discard: true })
        const fiber = yield* Effect.forEach(ids, (id) => backend.waitFor(id, { timeout: "20 seconds" }), {
          concurrency: "unbounded"
        }).pipe(Effect.fork)
        for (let i = ids.length - 1; i >= 100; i--) yield* store(ids[i]!, "SUCCESS", i)
        const metas = yield* Fiber.join(fiber)
        assert.deepStrictEqual(
          metas.map((m) => m.result),
          ids.map((_, i) => i)
        )
        yield* until(Effect.map(channels(`${Keys.TASK_KEYPREFIX}${prefix}-*`), (left) => left.length === 0))
      })
    )

    it.effect("the subscriber connection killed while waiting: the result stored meanwhile still arrives", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("killed")
        const fiber = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* command("CLIENT", "KILL", "TYPE", "pubsub")
        yield* store(id, "SUCCESS", "after the kill")
        assert.strictEqual((yield* Fiber.join(fiber)).result, "after the kill")
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    it.effect("a published value that does not decode fails with DecodeError and releases the channel", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("corrupt")
        const fiber = yield* Effect.fork(backend.waitFor(id))
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* storeRaw(id, '{"status": "SUCC')
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error._tag, "DecodeError")
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )

    // A waiter woken by a message resumes while its release is still pending: what it does then
    // (wait again, store) must not disturb the routing of the messages that follow.
    it.effect("woken waiters can wait again and store at once: a relay of 50 tasks", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const prefix = uid("relay")
        const ids = Array.from({ length: 51 }, (_, i) => `${prefix}-${i}`)
        // Step i waits for task i; woken, it waits for task i + 1 and has a
        // fiber store that result once the wait is subscribed, so most wake-ups come from a message.
        const step = (i: number): Effect.Effect<number, unknown, RedisClient.RedisClient> =>
          Effect.flatMap(backend.waitFor(ids[i]!, { timeout: "10 seconds" }), (meta) =>
            i === ids.length - 1
              ? Effect.succeed(meta.result as number)
              : Effect.zipRight(
                  Effect.fork(
                    Effect.zipRight(
                      until(Effect.map(numsub(ids[i + 1]!), (n) => n === 1)),
                      backend.markAsDone(ids[i + 1]!, (meta.result as number) + 1)
                    )
                  ),
                  step(i + 1)
                )
          )
        const relay = yield* Effect.fork(step(0))
        yield* until(Effect.map(numsub(ids[0]!), (n) => n === 1))
        yield* store(ids[0]!, "SUCCESS", 0)
        assert.strictEqual(yield* Fiber.join(relay), 50)
        yield* until(Effect.map(channels(`${Keys.TASK_KEYPREFIX}${prefix}-*`), (left) => left.length === 0))
      })
    )

    it.effect("a waiter that dies after waking fails alone: the others woken by the same message get it", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("dies")
        const dying = yield* Effect.fork(Effect.flatMap(backend.waitFor(id), () => Effect.die("boom after waking")))
        const others = yield* Effect.fork(
          Effect.all([backend.waitFor(id), backend.waitFor(id)], { concurrency: "unbounded" })
        )
        yield* until(Effect.map(numsub(id), (n) => n === 1))
        yield* store(id, "STARTED")
        yield* store(id, "SUCCESS", "shared")
        const exit = yield* Fiber.await(dying)
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        assert.deepStrictEqual(
          (yield* Fiber.join(others)).map((m) => m.result),
          ["shared", "shared"]
        )
        yield* until(Effect.map(numsub(id), (n) => n === 0))
      })
    )
  })
})
