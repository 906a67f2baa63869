import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Layer, Metric, Option, Stream, TestClock, Tracer } from "effect"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as Resource from "@effect/opentelemetry/Resource"
import { InMemorySpanExporter, SimpleSpanProcessor, BasicTracerProvider } from "@opentelemetry/sdk-trace-base"
import { RemoteException } from "@effect-celery/core/Errors"
import * as Memory from "@effect-celery/core/Memory"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { recording } from "../../../test-support/SpanRecorder.js"

const uid = (label: string) => `${label}-${crypto.randomUUID()}`
const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)
const exitOf = (span: Tracer.Span) => (span.status._tag === "Ended" ? span.status.exit : undefined)
const waitCount = Effect.map(
  Effect.all(["success", "TaskFailedError", "TimeoutError"].map((o) =>
    Metric.value(Metric.taggedWithLabels(Telemetry.waitDuration, Telemetry.labels(Telemetry.Attr.outcome, o)))
  )),
  (states) => states.map((s) => s.count)
)
const opCount = (op: string, outcome: string, errorType?: string) =>
  Metric.value(Metric.taggedWithLabels(
    Telemetry.operations,
    Telemetry.labels(
      ...(errorType === undefined
        ? [Telemetry.Attr.dbOperation, op, Telemetry.Attr.outcome, outcome]
        : [Telemetry.Attr.dbOperation, op, Telemetry.Attr.outcome, outcome, Telemetry.Attr.errorType, errorType])
    )
  )).pipe(Effect.map((c) => c.count))

describe("Telemetry on Memory", () => {
  it.effect("store: a client span under the caller's, with the semantic attributes; counted", () => {
    const rec = recording()
    return Effect.gen(function* () {
      const backend = yield* ResultBackend
      const taskId = uid("store")
      const before = yield* opCount(Telemetry.SpanName.store, "success")
      yield* backend.markAsDone(taskId, 42).pipe(Effect.withSpan("caller"))
      const [span] = rec.named(Telemetry.SpanName.store)
      assert.isDefined(span)
      assert.strictEqual(span.kind, "client")
      assert.strictEqual((parentOf(span) as Tracer.Span).name, "caller")
      assert.strictEqual(span.attributes.get("db.system.name"), "memory")
      assert.strictEqual(span.attributes.get("messaging.message.id"), taskId)
      assert.strictEqual(span.attributes.get("celery.task.state"), "SUCCESS")
      assert.isTrue(Exit.isSuccess(exitOf(span)!))
      assert.strictEqual((yield* opCount(Telemetry.SpanName.store, "success")) - before, 1)
    }).pipe(Effect.provide(Memory.layer({ metrics: true })), Effect.provide(rec.layer))
  })

  it.effect("waitFor: success, failure (error.type) and timeout; linked to the publication span; latency histogram", () => {
    const rec = recording()
    return Effect.gen(function* () {
      const backend = yield* ResultBackend
      const ok = uid("ok")
      const bad = uid("bad")
      const never = uid("never")
      const publish = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
      const histBefore = yield* waitCount
      const failuresBefore = yield* opCount(Telemetry.SpanName.wait, "failure", "TaskFailedError")

      const waiting = yield* Effect.fork(backend.waitFor(ok, { link: publish }))
      yield* backend.markAsDone(ok, 1)
      yield* Fiber.join(waiting)

      yield* backend.markAsFailure(bad, new RemoteException({ excType: "ValueError", excMessage: ["x"], excModule: "builtins" }))
      const failed = yield* Effect.either(backend.waitFor(bad))
      assert.isTrue(Either.isLeft(failed))

      const timing = yield* Effect.fork(Effect.either(backend.waitFor(never, { timeout: "1 second" })))
      yield* TestClock.adjust(Duration.seconds(2))
      const timedOut = yield* Fiber.join(timing)
      assert.isTrue(Either.isLeft(timedOut) && timedOut.left._tag === "TimeoutError")

      const waits = rec.named(Telemetry.SpanName.wait)
      const byTask = (id: string) => waits.find((s) => s.attributes.get("messaging.message.id") === id)!
      assert.isTrue(Exit.isSuccess(exitOf(byTask(ok))!))
      assert.strictEqual(byTask(ok).links.length, 1)
      assert.strictEqual(byTask(ok).links[0]!.span.spanId, "b7ad6b7169203331")
      assert.isTrue(Exit.isFailure(exitOf(byTask(bad))!))
      assert.strictEqual(byTask(bad).attributes.get("error.type"), "TaskFailedError")
      assert.isTrue(Exit.isFailure(exitOf(byTask(never))!))
      assert.strictEqual(byTask(never).attributes.get("error.type"), "TimeoutError")
      const histAfter = yield* waitCount
      assert.deepStrictEqual(histAfter.map((n, i) => n - histBefore[i]!), [1, 1, 1])
      assert.strictEqual((yield* opCount(Telemetry.SpanName.wait, "failure", "TaskFailedError")) - failuresBefore, 1)
    }).pipe(Effect.provide(Memory.layer({ metrics: true })), Effect.provide(rec.layer))
  })

  it.effect("getAll: one span with the count", () => {
    const rec = recording()
    return Effect.gen(function* () {
      const backend = yield* ResultBackend
      const ids = [uid("a"), uid("b"), uid("c")]
      for (const id of ids) yield* backend.markAsDone(id, id)
      const all = yield* backend.getAll(ids)
      assert.strictEqual(all.length, 3)
      const [span] = rec.named(Telemetry.SpanName.getAll)
      assert.strictEqual(span!.attributes.get("celery.task.count"), 3)
      assert.isTrue(Exit.isSuccess(exitOf(span!)!))
    }).pipe(Effect.provide(Memory.layer({ metrics: true })), Effect.provide(rec.layer))
  })

  it.effect("watch: the span lasts the subscription, an event per delivered state; watched-tasks gauge", () => {
    const rec = recording()
    return Effect.gen(function* () {
      const backend = yield* ResultBackend
      const consumer = yield* ResultConsumer
      const ids = [uid("w1"), uid("w2")]
      const gaugeBefore = (yield* Metric.value(Telemetry.watchedTasks)).value
      const fiber = yield* Effect.fork(Stream.runCollect(consumer.watch(ids)))
      // The watch is open (its span started, gauge up) before the states are stored.
      yield* Effect.yieldNow().pipe(Effect.repeat({ until: () => rec.named(Telemetry.SpanName.watch).length > 0 }))
      yield* Effect.yieldNow().pipe(Effect.repeat({ times: 10 }))
      assert.strictEqual((yield* Metric.value(Telemetry.watchedTasks)).value - gaugeBefore, 2)
      const [span] = rec.named(Telemetry.SpanName.watch)
      assert.strictEqual(span!.status._tag, "Started")
      yield* backend.markAsDone(ids[0]!, 1)
      yield* backend.markAsDone(ids[1]!, 2)
      yield* Fiber.join(fiber)
      assert.strictEqual(span!.status._tag, "Ended")
      const native = span as unknown as { events: Array<[string, bigint, Record<string, unknown>]> }
      const delivered = native.events.filter(([name]) => name === Telemetry.EventName.delivered)
      assert.deepStrictEqual(delivered.map(([, , a]) => a["messaging.message.id"]).sort(), [...ids].sort())
      assert.strictEqual((yield* Metric.value(Telemetry.watchedTasks)).value - gaugeBefore, 0)
    }).pipe(Effect.provide(Memory.layer({ metrics: true })), Effect.provide(rec.layer))
  })

  it.effect("tracing off and metrics off: the services are the unwrapped ones; tracing off makes no span", () => {
    const rec = recording()
    return Effect.gen(function* () {
      const raw = yield* Memory.make()
      assert.strictEqual(Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off", metrics: false }), raw.backend)
      assert.strictEqual(Telemetry.instrumentConsumer(raw.consumer, { system: "memory" }, { tracing: "off", metrics: false }), raw.consumer)
      // Metrics are opt-in: tracing off alone leaves the services unwrapped too.
      assert.strictEqual(Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off" }), raw.backend)
      const backend = Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: "off", metrics: true })
      const before = yield* opCount(Telemetry.SpanName.get, "success")
      yield* backend.get(uid("off"))
      assert.strictEqual(rec.named(Telemetry.SpanName.get).length, 0)
      assert.strictEqual((yield* opCount(Telemetry.SpanName.get, "success")) - before, 1)
      const rule = Telemetry.instrumentBackend(raw.backend, { system: "memory" }, { tracing: (op) => op === Telemetry.SpanName.wait })
      yield* rule.get(uid("rule"))
      assert.strictEqual(rec.named(Telemetry.SpanName.get).length, 0)
    }).pipe(Effect.provide(rec.layer))
  })

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
