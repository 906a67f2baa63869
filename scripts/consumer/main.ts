// A consumer's program, compiled and run by scripts/consumer-test.sh against the packed packages:
// store, waitFor and watch on a real redis-server, with only what the README's install line installs.
import { ResultBackend, ResultConsumer, TaskState } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"
import { SentinelBackend } from "@effect-celery/sentinel"
import { Chunk, Effect, Stream } from "effect"

const url = process.env["CELERY_RESULT_BACKEND"] ?? "redis://127.0.0.1:6379/0"
const id = `consumer-${process.pid}-${Date.now()}`

const program = Effect.gen(function* () {
  const backend = yield* ResultBackend.ResultBackend
  const consumer = yield* ResultConsumer.ResultConsumer
  // Watch first, then write: the stream sees STARTED and SUCCESS and ends on the ready state.
  const watched = yield* consumer.watch([id]).pipe(Stream.runCollect, Effect.fork)
  yield* backend.store(id, TaskState.STARTED, { pid: process.pid })
  yield* backend.markAsDone(id, { answer: 42 })
  const meta = yield* backend.waitFor(id, { timeout: "10 seconds" })
  const events = yield* watched.await.pipe(Effect.flatten, Effect.timeout("10 seconds"))
  yield* backend.forget(id)
  return { state: meta.status, result: meta.result, watched: Chunk.size(events) }
})

// Referenced so the type of the Sentinel layer resolves too (not run: no Sentinel here).
export const sentinelLayer: typeof SentinelBackend.layerUrl = SentinelBackend.layerUrl

const out = await Effect.runPromise(program.pipe(Effect.provide(RedisBackend.layerUrl(url))))
process.stdout.write(`consumer: ${JSON.stringify(out)}\n`)
if (out.state !== "SUCCESS" || out.watched < 1) process.exit(1)
