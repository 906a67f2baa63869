/**
 * Tracing and metrics: every backend operation as an OpenTelemetry span printed to the console,
 * and the library's Effect metrics read back at the end.
 *
 *   npx tsx examples/tracing.ts                                             # in-memory backend
 *   CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/0 npx tsx examples/tracing.ts   # a real Redis
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { NodeRuntime } from "@effect/platform-node"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Layer } from "effect"
import { Console, Effect, Fiber, Metric, Tracer } from "effect"
import type { ResultConsumer } from "@effect-celery/core"
import { Memory, ResultBackend, Telemetry } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"

const url = process.env["CELERY_RESULT_BACKEND"]
const backendLayer: Layer.Layer<ResultBackend.ResultBackend | ResultConsumer.ResultConsumer, unknown> =
  url === undefined || url === "" ? Memory.layer({ metrics: true }) : RedisBackend.layerUrl(url, { metrics: true })

// The exporter is the application's choice: the console here, OTLP (`@effect/opentelemetry/Otlp`) in production.
const TracingLive = NodeSdk.layer(() => ({
  resource: { serviceName: "effect-celery-example" },
  spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter())
}))

const program = Effect.gen(function* () {
  const backend = yield* ResultBackend.ResultBackend
  const taskId = `tracing-${Date.now().toString(36)}`
  // The task's publication span, as a traceparent header would carry it: the wait is linked to it.
  const published = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
  const waiter = yield* Effect.fork(backend.waitFor(taskId, { timeout: "5 seconds", link: published }))
  yield* backend.markAsStarted(taskId, { pid: process.pid, hostname: "example" })
  yield* backend.markAsDone(taskId, { answer: 42 })
  const meta = yield* Fiber.join(waiter)
  yield* Console.log(`${taskId}: ${meta.status} ${JSON.stringify(meta.result)}`)
  const stores = yield* Metric.value(
    Metric.taggedWithLabels(
      Telemetry.operations,
      Telemetry.labels(Telemetry.Attr.dbOperation, Telemetry.SpanName.store, Telemetry.Attr.outcome, "success")
    )
  )
  yield* Console.log(`celery.result.operations{store, success} = ${stores.count}`)
}).pipe(Effect.withSpan("example"), Effect.provide(backendLayer), Effect.provide(TracingLive))

NodeRuntime.runMain(program)
