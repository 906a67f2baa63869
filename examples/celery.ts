/**
 * A TypeScript service beside a real Python Celery worker: it follows tasks the worker runs
 * (STARTED, PROGRESS…, then SUCCESS/FAILURE) as one Stream, then reads each final result, typed.
 *
 *   npx tsx examples/celery.ts <task-id>...     (ids printed by examples/celery/send.py)
 *
 * See examples/README.md for starting the worker. The backend URL comes from
 * CELERY_RESULT_BACKEND (default redis://127.0.0.1:6379/0), as the worker's does.
 */
import { Effect, Stream } from "effect"
import { ResultBackend, ResultConsumer } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"

const ids = process.argv.slice(2)
const url = process.env["CELERY_RESULT_BACKEND"] ?? "redis://127.0.0.1:6379/0"

const program = Effect.gen(function* () {
  const consumer = yield* ResultConsumer.ResultConsumer
  const backend = yield* ResultBackend.ResultBackend
  // Every state change of every task, until each is ready (the stream ends by itself).
  yield* consumer.watch(ids).pipe(
    Stream.runForEach((item) =>
      Effect.sync(() => {
        if (item._tag === "Right") {
          const meta = item.right
          process.stdout.write(`${meta.taskId} ${meta.status} ${JSON.stringify(meta.result)}\n`)
        } else {
          process.stdout.write(`undecodable: ${item.left.message}\n`)
        }
      })
    )
  )
  // The final results, typed: SUCCESS → the value; FAILURE → TaskFailedError with the exception.
  for (const id of ids) {
    const outcome = yield* backend.waitFor(id, { timeout: "10 seconds" }).pipe(
      Effect.map((meta) => `result ${id} = ${JSON.stringify(meta.result)}`),
      Effect.catchTag("TaskFailedError", (e) =>
        Effect.succeed(
          `failed ${id}: ${e.exception?.excType}: ${(e.exception?.excMessage ?? []).map(String).join(", ")}`
        )
      )
    )
    process.stdout.write(`${outcome}\n`)
  }
})

Effect.runPromise(program.pipe(Effect.provide(RedisBackend.layerUrl(url)))).catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
