/**
 * The telemetry part of the conformance suite (`Conformance.suite` registers it; not an entry
 * point): the span tree (names, parents, attributes, error status) and the metrics of store,
 * waitFor (success, failure, timeout), getAll and watch, which every backend gets from
 * `Telemetry.instrumentBackend` / `instrumentConsumer` and must not lose on the way.
 *
 * Each test records its own spans (`SpanRecorder`) and tags its metrics with a label of its own
 * (`Effect.tagMetrics`), so it reads exact counts while other tests and suites run at once.
 */
import { assert } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { RemoteException } from "../Errors.js"
import { ResultBackend } from "../ResultBackend.js"
import { ResultConsumer } from "../ResultConsumer.js"
import * as Telemetry from "../Telemetry.js"
import type { Hooks, Services } from "./Conformance.js"
import * as SpanRecorder from "./SpanRecorder.js"

type It = Vitest.MethodsNonLive<Services, boolean>

/** The conformance helpers these tests use (see `Conformance.ts`). */
export interface Helpers {
  readonly within: <A, E, R>(self: Effect.Effect<A, E, R>, what: string) => Effect.Effect<A, E, R>
  readonly tap: <A, E, R>(
    stream: Stream.Stream<A, E, R>
  ) => Effect.Effect<
    {
      readonly next: (what: string) => Effect.Effect<A>
      readonly take: (n: number, what: string) => Effect.Effect<Array<A>>
      readonly done: Effect.Effect<void, E>
    },
    never,
    R | Scope.Scope
  >
  readonly elapseUntilDone: <A, E>(
    fiber: Fiber.Fiber<A, E>,
    step: Duration.DurationInput
  ) => Effect.Effect<Exit.Exit<A, E>, unknown, Hooks>
  readonly listening: (taskId: string) => Effect.Effect<void, unknown, Hooks>
}

/** The label that keeps one test's metrics apart from every other's. */
const TEST_LABEL = "celery.conformance.test"

const id = (label: string): string => `${label}-${randomUUID()}`

const services = Effect.all({ backend: ResultBackend, consumer: ResultConsumer })

/** Run a test body with its own span recorder and metric label. */
const recorded = <A, E, R>(
  body: (rec: SpanRecorder.SpanRecorder) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const rec = SpanRecorder.make()
  return body(rec).pipe(Effect.withTracer(rec.tracer), Effect.tagMetrics(TEST_LABEL, randomUUID()))
}

const count = (metric: Metric.Metric.Counter<number>, ...pairs: ReadonlyArray<string>) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(metric, Telemetry.labels(...pairs))), (s) => s.count)

const observations = (metric: Metric.Metric.Histogram<number>, ...pairs: ReadonlyArray<string>) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(metric, Telemetry.labels(...pairs))), (s) => s.count)

const operations = (op: Telemetry.OperationName, outcome: "success" | "failure", errorType?: string) =>
  count(
    Telemetry.operations,
    ...[Telemetry.Attr.dbOperation, op, Telemetry.Attr.outcome, outcome],
    ...(errorType === undefined ? [] : [Telemetry.Attr.errorType, errorType])
  )

const watched = Effect.map(Metric.value(Telemetry.watchedTasks), (s) => s.value)

/** The only span of this name, checked to be a finished client span with the store's attributes. */
const only = (rec: SpanRecorder.SpanRecorder, name: string): Tracer.Span => {
  const spans = rec.named(name)
  assert.strictEqual(spans.length, 1, `one ${name} span, got ${spans.length}`)
  return spans[0]!
}

const assertClientSpan = (span: Tracer.Span) => {
  assert.strictEqual(span.kind, "client", `${span.name} is a client span`)
  const system = span.attributes.get(Telemetry.Attr.dbSystem)
  assert.isString(system, `${span.name} has ${Telemetry.Attr.dbSystem}`)
  assert.notStrictEqual(system, "")
}

const succeeded = (span: Tracer.Span) => {
  const exit = SpanRecorder.exitOf(span)
  assert.isDefined(exit, `${span.name} ended`)
  assert.isTrue(Exit.isSuccess(exit), `${span.name} succeeded`)
  assert.isUndefined(span.attributes.get(Telemetry.Attr.errorType), `${span.name} has no error.type`)
}

const failedWith = (span: Tracer.Span, errorType: string) => {
  const exit = SpanRecorder.exitOf(span)
  assert.isDefined(exit, `${span.name} ended`)
  assert.isTrue(Exit.isFailure(exit), `${span.name} failed`)
  assert.strictEqual(span.attributes.get(Telemetry.Attr.errorType), errorType)
}

const byTask = (spans: ReadonlyArray<Tracer.Span>, taskId: string): Tracer.Span => {
  const found = spans.filter((s) => s.attributes.get(Telemetry.Attr.taskId) === taskId)
  assert.strictEqual(found.length, 1, `one span for ${taskId}`)
  return found[0]!
}

/** With `metrics: true`: spans and exact metric counts. */
export const metricsTests = (it: It, h: Helpers): void => {
  it.effect("a store is a client span under the caller's, with the task id and state; counted with its duration", () =>
    recorded((rec) =>
      Effect.gen(function* () {
        const { backend } = yield* services
        const taskId = id("tel-store")
        yield* backend.store(taskId, "PROGRESS", { n: 1 }).pipe(Effect.withSpan("caller"))
        yield* backend.markAsDone(taskId, 42).pipe(Effect.withSpan("caller"))

        const spans = rec.named(Telemetry.SpanName.store)
        assert.strictEqual(spans.length, 2)
        for (const span of spans) {
          assertClientSpan(span)
          assert.strictEqual(SpanRecorder.parentOf(span)?.name, "caller")
          assert.strictEqual(span.attributes.get(Telemetry.Attr.taskId), taskId)
          succeeded(span)
        }
        assert.deepStrictEqual(
          spans.map((s) => s.attributes.get(Telemetry.Attr.taskState)),
          ["PROGRESS", "SUCCESS"]
        )

        assert.strictEqual(yield* operations(Telemetry.SpanName.store, "success"), 2)
        assert.strictEqual(yield* operations(Telemetry.SpanName.store, "failure"), 0)
        const system = String(spans[0]!.attributes.get(Telemetry.Attr.dbSystem))
        assert.strictEqual(
          yield* observations(
            Telemetry.operationDuration,
            Telemetry.Attr.dbOperation,
            Telemetry.SpanName.store,
            Telemetry.Attr.dbSystem,
            system
          ),
          2
        )
      })
    )
  )

  it.scoped(
    "waitFor succeeds, fails (error.type TaskFailedError) and times out (TimeoutError); linked to the publication; wait histogram by outcome",
    () =>
      recorded((rec) =>
        Effect.gen(function* () {
          const { backend } = yield* services
          const [ok, bad, never] = ["tel-ok", "tel-bad", "tel-never"].map(id) as [string, string, string]
          const publish = Tracer.externalSpan({
            traceId: "0af7651916cd43dd8448eb211c80319c",
            spanId: "b7ad6b7169203331"
          })

          const waiting = yield* Effect.fork(backend.waitFor(ok, { link: publish }).pipe(Effect.withSpan("caller")))
          yield* h.listening(ok)
          yield* backend.markAsDone(ok, 1)
          assert.strictEqual((yield* h.within(Fiber.join(waiting), "waitFor")).result, 1)

          yield* backend.markAsFailure(
            bad,
            new RemoteException({ excType: "ValueError", excMessage: ["x"], excModule: "builtins" })
          )
          const failed = yield* Effect.either(backend.waitFor(bad))
          assert.isTrue(Either.isLeft(failed) && failed.left._tag === "TaskFailedError")

          const timing = yield* Effect.fork(backend.waitFor(never, { timeout: "1 second" }))
          const timedOut = yield* h.elapseUntilDone(timing, "1 second")
          assert.isTrue(Exit.isFailure(timedOut))
          if (Exit.isFailure(timedOut)) {
            const error = timedOut.cause._tag === "Fail" ? timedOut.cause.error : undefined
            assert.strictEqual(error?._tag, "TimeoutError")
          }

          const waits = rec.named(Telemetry.SpanName.wait)
          assert.strictEqual(waits.length, 3)
          for (const span of waits) assertClientSpan(span)
          const okSpan = byTask(waits, ok)
          succeeded(okSpan)
          assert.strictEqual(SpanRecorder.parentOf(okSpan)?.name, "caller")
          assert.deepStrictEqual(
            okSpan.links.map((l) => l.span.spanId),
            ["b7ad6b7169203331"]
          )
          failedWith(byTask(waits, bad), "TaskFailedError")
          failedWith(byTask(waits, never), "TimeoutError")
          assert.strictEqual(byTask(waits, never).links.length, 0)

          assert.strictEqual(yield* operations(Telemetry.SpanName.wait, "success"), 1)
          assert.strictEqual(yield* operations(Telemetry.SpanName.wait, "failure", "TaskFailedError"), 1)
          assert.strictEqual(yield* operations(Telemetry.SpanName.wait, "failure", "TimeoutError"), 1)
          for (const outcome of ["success", "TaskFailedError", "TimeoutError"]) {
            assert.strictEqual(
              yield* observations(Telemetry.waitDuration, Telemetry.Attr.outcome, outcome),
              1,
              `waits ending ${outcome}`
            )
          }
        })
      )
  )

  it.scoped("getAll is one span with the task count, failing with TimeoutError when one is missing", () =>
    recorded((rec) =>
      Effect.gen(function* () {
        const { backend } = yield* services
        const ids = ["tel-a", "tel-b", "tel-c"].map(id)
        for (const taskId of ids) yield* backend.markAsDone(taskId, taskId)
        const all = yield* backend.getAll(ids).pipe(Effect.withSpan("caller"))
        assert.strictEqual(all.length, 3)

        const missing = id("tel-missing")
        const timing = yield* Effect.fork(backend.getAll([ids[0]!, missing], { timeout: "1 second" }))
        const timedOut = yield* h.elapseUntilDone(timing, "1 second")
        assert.isTrue(Exit.isFailure(timedOut))

        const spans = rec.named(Telemetry.SpanName.getAll)
        assert.strictEqual(spans.length, 2)
        for (const span of spans) assertClientSpan(span)
        assert.strictEqual(SpanRecorder.parentOf(spans[0]!)?.name, "caller")
        assert.strictEqual(spans[0]!.attributes.get(Telemetry.Attr.taskCount), 3)
        succeeded(spans[0]!)
        assert.strictEqual(spans[1]!.attributes.get(Telemetry.Attr.taskCount), 2)
        failedWith(spans[1]!, "TimeoutError")

        assert.strictEqual(yield* operations(Telemetry.SpanName.getAll, "success"), 1)
        assert.strictEqual(yield* operations(Telemetry.SpanName.getAll, "failure", "TimeoutError"), 1)
      })
    )
  )

  it.scoped(
    "a watch's span lasts the subscription with an event per delivered state; the watched-tasks gauge follows it",
    () =>
      recorded((rec) =>
        Effect.gen(function* () {
          const { backend, consumer } = yield* services
          const [a, b] = ["tel-w1", "tel-w2"].map(id) as [string, string]
          yield* backend.markAsStarted(a, { pid: 1, hostname: "h" })
          const events = yield* h.tap(consumer.watch([a, b]).pipe(Stream.withSpan("caller")))
          yield* events.next("the current state")
          // The watch is live: its span is open and both tasks count as watched.
          const span = only(rec, Telemetry.SpanName.watch)
          assertClientSpan(span)
          assert.strictEqual(SpanRecorder.parentOf(span)?.name, "caller")
          assert.strictEqual(span.status._tag, "Started")
          assert.strictEqual(span.attributes.get(Telemetry.Attr.taskCount), 2)
          assert.strictEqual(yield* watched, 2)

          yield* backend.markAsDone(a, 1)
          yield* backend.markAsDone(b, 2)
          yield* events.take(2, "the final states")
          yield* events.done
          succeeded(span)
          const delivered = rec.events(span).filter((e) => e.name === Telemetry.EventName.delivered)
          assert.sameMembers(
            delivered.map(
              (e) => `${String(e.attributes[Telemetry.Attr.taskId])}:${String(e.attributes[Telemetry.Attr.taskState])}`
            ),
            [`${a}:STARTED`, `${a}:SUCCESS`, `${b}:SUCCESS`]
          )
          assert.strictEqual(yield* watched, 0)
          assert.strictEqual(yield* operations(Telemetry.SpanName.watch, "success"), 1)
        })
      )
  )
}

/** With the default options: spans, and no metric (they are opt-in). */
export const defaultTests = (it: It): void => {
  it.effect("operations make spans but record no metric", () =>
    recorded((rec) =>
      Effect.gen(function* () {
        const { backend } = yield* services
        const taskId = id("tel-default")
        yield* backend.markAsDone(taskId, 1)
        yield* backend.get(taskId)
        succeeded(only(rec, Telemetry.SpanName.store))
        succeeded(only(rec, Telemetry.SpanName.get))
        assert.strictEqual(yield* operations(Telemetry.SpanName.store, "success"), 0)
        assert.strictEqual(yield* operations(Telemetry.SpanName.get, "success"), 0)
      })
    )
  )
}
