/**
 * Telemetry beyond what the conformance suite checks on every backend (the span tree and metrics
 * of store, waitFor, getAll and watch: testing/TelemetryConformance.ts): the unwrapped services
 * when both are off, the tracing rule, and a real OpenTelemetry SDK tracer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as Resource from "@effect/opentelemetry/Resource"
import { InMemorySpanExporter, SimpleSpanProcessor, BasicTracerProvider } from "@opentelemetry/sdk-trace-base"
import * as Memory from "@effect-celery/core/Memory"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { SpanRecorder } from "@effect-celery/core/testing"

const uid = (label: string) => `${label}-${crypto.randomUUID()}`
const opCount = (op: string, outcome: string) =>
  Metric.value(
    Metric.taggedWithLabels(
      Telemetry.operations,
      Telemetry.labels(Telemetry.Attr.dbOperation, op, Telemetry.Attr.outcome, outcome)
    )
  ).pipe(Effect.map((c) => c.count))

describe("Telemetry on Memory", () => {
  it.effect("tracing off and metrics off: the services are the unwrapped ones; tracing off makes no span", () => {
    const rec = SpanRecorder.make()
    return Effect.gen(function* () {
      const raw = yield* Memory.make()
      assert.strictEqual(
        Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off", metrics: false }),
        raw.backend
      )
      assert.strictEqual(
        Telemetry.instrumentConsumer(raw.consumer, { system: "memory" }, { tracing: "off", metrics: false }),
        raw.consumer
      )
      // Metrics are opt-in: tracing off alone leaves the services unwrapped too.
      assert.strictEqual(
        Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off" }),
        raw.backend
      )
      const backend = Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off", metrics: true })
      yield* backend.get(uid("off"))
      assert.strictEqual(rec.named(Telemetry.SpanName.get).length, 0)
      assert.strictEqual(yield* opCount(Telemetry.SpanName.get, "success"), 1)
      const rule = Telemetry.instrumentBackend(
        raw.backend,
        { system: "memory" },
        { tracing: (op) => op === Telemetry.SpanName.wait }
      )
      yield* rule.get(uid("rule"))
      assert.strictEqual(rec.named(Telemetry.SpanName.get).length, 0)
    }).pipe(Effect.provide(rec.layer), Effect.tagMetrics("test", uid("off")))
  })

  it.effect(
    "metrics carry the caller's Effect.tagMetrics labels, so two callers are told apart (operations and retries alike)",
    () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const [billing, reports] = [uid("billing"), uid("reports")]
        const asBilling = Effect.tagMetrics("app.backend", billing)
        const asReports = Effect.tagMetrics("app.backend", reports)
        yield* backend.markAsDone(uid("b"), 1).pipe(asBilling)
        yield* backend.markAsDone(uid("r1"), 1).pipe(asReports)
        yield* backend.markAsDone(uid("r2"), 1).pipe(asReports)
        yield* Telemetry.onRetry("kombu").pipe(asReports)
        assert.strictEqual(yield* opCount(Telemetry.SpanName.store, "success").pipe(asBilling), 1)
        assert.strictEqual(yield* opCount(Telemetry.SpanName.store, "success").pipe(asReports), 2)
        const retries = Metric.value(
          Metric.taggedWithLabels(Telemetry.retryAttempts, Telemetry.labels(Telemetry.Attr.retryPolicy, "kombu"))
        )
        assert.strictEqual((yield* retries.pipe(asReports)).count, 1)
        assert.strictEqual((yield* retries.pipe(asBilling)).count, 0)
      }).pipe(Effect.provide(Memory.layer({ metrics: true })))
  )

  it.effect("a real OpenTelemetry SDK tracer (@effect/opentelemetry, in-memory exporter) receives the spans", () => {
    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    const otel = OtelTracer.layer.pipe(
      Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider)),
      Layer.provide(Resource.layer({ serviceName: "telemetry-test" }))
    )
    return Effect.gen(function* () {
      const backend = yield* ResultBackend
      const taskId = uid("otel")
      yield* backend.markAsDone(taskId, 1).pipe(Effect.withSpan("caller"))
      yield* Effect.either(backend.waitFor(uid("missing"), { timeout: 0 }))
      const spans = exporter.getFinishedSpans()
      const store = spans.find((s) => s.name === Telemetry.SpanName.store)!
      const caller = spans.find((s) => s.name === "caller")!
      assert.strictEqual(store.parentSpanContext?.spanId, caller.spanContext().spanId)
      assert.strictEqual(store.attributes["messaging.message.id"], taskId)
      assert.strictEqual(store.attributes["db.system.name"], "memory")
      const wait = spans.find((s) => s.name === Telemetry.SpanName.wait)!
      assert.strictEqual(wait.status.code, 2) // SpanStatusCode.ERROR
      assert.strictEqual(wait.attributes["error.type"], "TimeoutError")
    }).pipe(Effect.provide(Memory.layer({ metrics: true })), Effect.provide(otel))
  })
})
