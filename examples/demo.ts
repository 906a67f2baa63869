/**
 * effect-celery demo: a producer records task states the way a Celery worker does, while a watcher
 * follows them as a Stream and a client waits for results.
 *
 *   npm run demo                                         # in-memory backend
 *   CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/0 npm run demo   # a real Redis (also rediss://, sentinel://)
 */
import { NodeRuntime } from "@effect/platform-node"
import type { Layer } from "effect"
import { Console, Deferred, Effect, Either, Fiber, Option, Stream } from "effect"
import { Errors, Memory, ResultBackend, ResultConsumer } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"
import { SentinelBackend } from "@effect-celery/sentinel"

const url = process.env["CELERY_RESULT_BACKEND"]

const backendLayer: Layer.Layer<ResultBackend.ResultBackend | ResultConsumer.ResultConsumer, unknown> =
  url === undefined || url === "" || url === "memory://"
    ? Memory.layer()
    : url.startsWith("sentinel://")
      ? SentinelBackend.layerUrl(url, { masterName: process.env["CELERY_SENTINEL_MASTER_NAME"] ?? "mymaster" })
      : RedisBackend.layerUrl(url)

const run = (n: number) => `demo-${Date.now().toString(36)}-${n}`

/** What a worker would do after STARTED: progress updates, then SUCCESS or FAILURE. */
const worker = (ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    for (const [i, id] of ids.entries()) {
      for (let step = 1; step <= 2; step++) {
        yield* backend.store(id, "PROGRESS", { current: step, total: 2 })
      }
      if (i === ids.length - 1) {
        yield* backend.markAsFailure(
          id,
          new Errors.RemoteException({
            excType: "PaymentError",
            excMessage: ["card declined", 42],
            excModule: "billing.tasks"
          }),
          {
            traceback: "Traceback (most recent call last):\n  ...\nbilling.tasks.PaymentError: ('card declined', 42)\n"
          }
        )
      } else {
        yield* backend.markAsDone(id, { charged: 10 * (i + 1), currency: "EUR", note: "café" })
      }
    }
  })

const program = Effect.gen(function* () {
  const backend = yield* ResultBackend.ResultBackend
  const consumer = yield* ResultConsumer.ResultConsumer
  const ids = [run(1), run(2), run(3)]
  yield* Console.log(`backend: ${url ?? "in-memory"}`)

  for (const id of ids) yield* backend.markAsStarted(id, { pid: process.pid, hostname: "demo@localhost" })

  // A watch emits each task's current state first, then every later change in order; it ends when all
  // three tasks are ready. The worker goes on once the watcher has seen the three STARTED states.
  yield* Console.log("watching 3 tasks:")
  const seenStarted = yield* Deferred.make<void>()
  let seen = 0
  const watcher = yield* consumer.watch(ids).pipe(
    Stream.runForEach((event) =>
      Either.match(event, {
        onLeft: (e) => Console.log(`  undecodable value for ${e.id}: ${e.message}`),
        onRight: (meta) =>
          Console.log(`  task ${meta.taskId.slice(-1)}: ${meta.status.padEnd(8)} ${JSON.stringify(meta.result)}`)
      }).pipe(Effect.zipRight(++seen === ids.length ? Deferred.succeed(seenStarted, undefined) : Effect.void))
    ),
    Effect.fork
  )
  yield* Deferred.await(seenStarted)
  yield* worker(ids)
  yield* Fiber.join(watcher)

  const ok = yield* backend.waitFor(ids[0]!, { timeout: "5 seconds" })
  yield* Console.log(`waitFor(${ids[0]}) → ${JSON.stringify(ok.result)}`)
  const failed = yield* backend.waitFor(ids[2]!, { timeout: "5 seconds" }).pipe(Effect.flip)
  yield* Console.log(`waitFor(${ids[2]}) → ${failed._tag}: ${failed.message}`)

  const many = yield* backend.getMany(ids, { timeout: "5 seconds" }).pipe(Stream.runCollect)
  yield* Console.log(
    `getMany → ${[...many].map(Either.match({ onLeft: (e) => e._tag, onRight: (m) => m.status })).join(", ")}`
  )
  const all = yield* backend.getAll(ids, { timeout: "5 seconds" })
  yield* Console.log(
    `getAll → ${all.map(Either.match({ onLeft: (e) => e._tag, onRight: (m) => `${m.taskId}: ${m.status}` })).join(", ")}`
  )

  yield* backend.saveGroup("demo-group", ids)
  const group = yield* backend.restoreGroup("demo-group")
  yield* Console.log(
    `group → ${Option.match(group, { onNone: () => "missing", onSome: (g) => g.results.map((r) => r.id).join(", ") })}`
  )
  for (const id of ids) yield* backend.forget(id)
  yield* backend.deleteGroup("demo-group")
})

program.pipe(Effect.provide(backendLayer), NodeRuntime.runMain)
