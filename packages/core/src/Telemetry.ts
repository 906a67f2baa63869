/**
 * Spans and metrics for every `ResultBackend` / `ResultConsumer` operation, with OpenTelemetry's
 * stable semantic names. Only `effect/Tracer` spans and `effect/Metric` are used (no OpenTelemetry
 * dependency): the application chooses the exporter (`@effect/opentelemetry`'s `NodeSdk`, `Otlp`,
 * or none — then no span is made, see `defaultTracer`). Metrics are opt-in (`metrics: true`).
 *
 * Every layer (Memory, Redis, Sentinel) wraps its services with `instrumentBackend` /
 * `instrumentConsumer`, so the names below are the same whatever the store.
 *
 * Every metric also carries the metric labels in effect where it is recorded, as Effect's own
 * `Metric` updates do: wrap calls in `Effect.tagMetrics("app.backend", "billing")` to tell two
 * backends (or two tests) apart.
 */
import * as Channel from "effect/Channel"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { ResultBackend } from "./ResultBackend.js"
import type { ResultConsumer } from "./ResultConsumer.js"

// ---------------------------------------------------------------------------------------------
// Names

/** Span names, one per Celery operation. */
export const SpanName = {
  store: "celery.result.store",
  get: "celery.result.get",
  getMany: "celery.result.get_many",
  getAll: "celery.result.get_all",
  wait: "celery.result.wait",
  forget: "celery.result.forget",
  exists: "celery.result.exists",
  watch: "celery.result.watch",
  saveGroup: "celery.group.save",
  restoreGroup: "celery.group.restore",
  deleteGroup: "celery.group.delete",
  setChordSize: "celery.chord.set_size",
  addToChord: "celery.chord.add",
  chordPartReturn: "celery.chord.part_return"
} as const

/** Attribute keys: OpenTelemetry's stable names where one exists, `celery.*` otherwise. */
export const Attr = {
  dbSystem: "db.system.name",
  dbOperation: "db.operation.name",
  dbNamespace: "db.namespace",
  serverAddress: "server.address",
  serverPort: "server.port",
  errorType: "error.type",
  taskId: "messaging.message.id",
  taskCount: "celery.task.count",
  taskState: "celery.task.state",
  groupId: "celery.group.id",
  errorReason: "celery.error.reason",
  outcome: "celery.outcome",
  retryPolicy: "celery.retry.policy",
  retryReason: "celery.retry.reason",
  retries: "celery.retry.retries"
} as const

/** Span event names. */
export const EventName = {
  /** A `watch` delivered a state; attributes: task id and state. */
  delivered: "celery.result.delivered",
  /** A `watch`'s subscriber connection was lost; its states are buffered until the resync. */
  subscriberReconnect: "celery.subscriber.reconnect",
  /** A `watch` was resynced after `subscriberReconnect`: its channels re-subscribed, keys re-read. */
  subscriberResync: "celery.subscriber.resync"
} as const

// ---------------------------------------------------------------------------------------------
// Metrics

const secondsBoundaries = MetricBoundaries.fromIterable([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10])

/** Operations, tagged `db.operation.name`, `celery.outcome` (`success` | `failure`) and `error.type` on failure. */
export const operations = Metric.counter("celery.result.operations", {
  description: "Result backend operations by kind and outcome",
  incremental: true
})

/** `db.client.operation.duration` (seconds), tagged `db.operation.name` and `db.system.name`. */
export const operationDuration = Metric.histogram(
  "db.client.operation.duration",
  secondsBoundaries,
  "Duration of result backend operations (seconds)"
)

/** How long `waitFor` waited (seconds), tagged `celery.outcome`. */
export const waitDuration = Metric.histogram(
  "celery.result.wait.duration",
  MetricBoundaries.fromIterable([0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]),
  "Time waitFor waited for a result (seconds)"
)

/** Retries made, tagged `celery.retry.policy` (`kombu` | `always`). */
export const retryAttempts = Metric.counter("celery.retry.attempts", {
  description: "Retries after connection errors",
  incremental: true
})

/** Retry loops that gave up, tagged `celery.retry.policy` and `celery.retry.reason`. */
export const retryGiveUps = Metric.counter("celery.retry.give_ups", {
  description: "Retry loops that gave up",
  incremental: true
})

/** Tasks watched right now (`watch` and `waitFor` subscriptions). */
export const watchedTasks = Metric.gauge("celery.result.watched_tasks", {
  description: "Tasks being watched"
})

/** Pub/Sub channels the subscriber connection is subscribed to. */
export const subscribedChannels = Metric.gauge("celery.subscriber.channels", {
  description: "Channels subscribed on the subscriber connection"
})

/** Subscriber connections re-made after the previous one was lost. */
export const subscriberReconnects = Metric.counter("celery.subscriber.reconnects", {
  description: "Subscriber reconnections",
  incremental: true
})

/** Subscriber resyncs (every watched channel re-subscribed and its key re-read). */
export const subscriberResyncs = Metric.counter("celery.subscriber.resyncs", {
  description: "Subscriber resyncs",
  incremental: true
})

/** Label arrays are made once per (metric, tags) so the hot path allocates none. */
const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
/** The labels for `pairs` (`[key, value, key, value…]`), cached. */
export const labels = (...pairs: ReadonlyArray<string>): ReadonlyArray<MetricLabel.MetricLabel> => {
  const key = pairs.join("\u0000")
  let found = labelCache.get(key)
  if (found === undefined) {
    const made: Array<MetricLabel.MetricLabel> = []
    for (let i = 0; i + 1 < pairs.length; i += 2) made.push(MetricLabel.make(pairs[i]!, pairs[i + 1]!))
    found = made
    labelCache.set(key, found)
  }
  return found
}

/** `base` then the fiber's metric labels `extra`, made once per pair of arrays (the hot path allocates none). */
const mergedLabels = new WeakMap<
  ReadonlyArray<MetricLabel.MetricLabel>,
  WeakMap<ReadonlyArray<MetricLabel.MetricLabel>, ReadonlyArray<MetricLabel.MetricLabel>>
>()
const withExtra = (
  base: ReadonlyArray<MetricLabel.MetricLabel>,
  extra: ReadonlyArray<MetricLabel.MetricLabel>
): ReadonlyArray<MetricLabel.MetricLabel> => {
  if (extra.length === 0) return base
  let byBase = mergedLabels.get(extra)
  if (byBase === undefined) {
    byBase = new WeakMap()
    mergedLabels.set(extra, byBase)
  }
  let found = byBase.get(base)
  if (found === undefined) {
    found = [...base, ...extra]
    byBase.set(base, found)
  }
  return found
}

/** Run `f` with the metric labels of the current fiber (`Effect.tagMetrics`). */
const withMetricLabels = <A, E, R>(f: (extra: ReadonlyArray<MetricLabel.MetricLabel>) => Effect.Effect<A, E, R>) =>
  FiberRef.getWith(FiberRef.currentMetricLabels, f)

/**
 * Count one retry. Its span event needs no code: Effect's tracer logger turns the retry's log
 * line (Celery's `Connection to Redis lost: Retry (n/max) …`) into an event on the current span.
 */
export const onRetry = (policy: "kombu" | "always") =>
  withMetricLabels((extra) =>
    Effect.sync(() => retryAttempts.unsafeUpdate(1, withExtra(labels(Attr.retryPolicy, policy), extra)))
  )

/** Count one give-up of a retry loop. */
export const onGiveUp = (policy: "kombu" | "always", reason: string) =>
  withMetricLabels((extra) =>
    Effect.sync(() =>
      retryGiveUps.unsafeUpdate(1, withExtra(labels(Attr.retryPolicy, policy, Attr.retryReason, reason), extra))
    )
  )

// ---------------------------------------------------------------------------------------------
// Options

/**
 * Which operations get a span: `"on"` (default) every one, `"off"` none, or a rule deciding per
 * operation (its span name, e.g. `(op) => op === "celery.result.wait"`). Metrics do not depend on
 * it (`metrics: true` turns them on).
 */
export type Tracing = "on" | "off" | ((operation: OperationName) => boolean)

export type OperationName = (typeof SpanName)[keyof typeof SpanName]

export interface TelemetryOptions {
  /** Spans: default `"on"`. */
  readonly tracing?: Tracing | undefined
  /**
   * Per-operation metrics (operations, durations, watched tasks): default `false`. With
   * `tracing: "off"` and metrics off the services are not wrapped at all. The event counters
   * (retries, give-ups, subscriber reconnects) are recorded either way: they cost nothing until
   * something goes wrong.
   */
  readonly metrics?: boolean | undefined
}

/** Where the store is: the static attributes of every span (and the `db.system.name` metric tag). */
export interface Target {
  readonly system: string
  readonly address?: string | undefined
  readonly port?: number | undefined
  /** The database number. */
  readonly namespace?: string | number | undefined
}

/** The target of a `redis://` / `rediss://` / `redis+socket://` / `sentinel://` URI (the first server). */
export const targetFromUri = (uri: string, db: number): Target => {
  const first = uri.split(";")[0] ?? uri
  try {
    const url = new URL(first)
    // A unix socket (`RedisClient.uri` shows one as Celery does, `socket:///path`): its path is
    // the address, with no port.
    if (url.protocol === "socket:" || url.protocol.startsWith("redis+socket") || url.protocol.startsWith("unix")) {
      return { system: "redis", address: url.pathname, namespace: db }
    }
    const port = url.port === "" ? 6379 : Number(url.port)
    return { system: "redis", address: url.hostname.replace(/^\[|\]$/g, ""), port, namespace: db }
  } catch {
    return { system: "redis", namespace: db }
  }
}

// ---------------------------------------------------------------------------------------------
// The wrapper

interface Instrument {
  readonly effect: <A, E, R>(
    name: OperationName,
    attributes: Record<string, unknown> | undefined,
    effect: Effect.Effect<A, E, R>,
    links?: ReadonlyArray<Tracer.SpanLink>
  ) => Effect.Effect<A, E, R>
  /** `effect` for an operation on one task: its attributes are made only when a span is. */
  readonly task: <A, E, R>(
    name: OperationName,
    taskId: string,
    state: string | undefined,
    effect: Effect.Effect<A, E, R>,
    links?: ReadonlyArray<Tracer.SpanLink>
  ) => Effect.Effect<A, E, R>
  readonly stream: <A, E, R>(
    name: OperationName,
    attributes: Record<string, unknown>,
    stream: Stream.Stream<A, E, R>,
    onItem?: (span: Tracer.Span, item: A, nanos: bigint) => void
  ) => Stream.Stream<A, E, R>
}

const errorTypeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (exit._tag === "Success") return ""
  const cause = exit.cause
  if (cause._tag === "Fail") {
    const e = cause.error
    if (typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string") return e._tag
    return "Error"
  }
  return cause._tag === "Interrupt" ? "Interrupted" : "Defect"
}

const reasonOf = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (exit._tag === "Success" || exit.cause._tag !== "Fail") return undefined
  const e = exit.cause.error
  if (typeof e === "object" && e !== null) {
    if ("reason" in e && typeof e.reason === "string") return e.reason
    if ("lastCause" in e && typeof e.lastCause === "object" && e.lastCause !== null && "reason" in e.lastCause) {
      return String(e.lastCause.reason)
    }
  }
  return undefined
}

const makeInstrument = (target: Target, options: TelemetryOptions): Instrument => {
  const tracing = options.tracing ?? "on"
  const metrics = options.metrics ?? false
  const traced: (name: OperationName) => boolean =
    tracing === "on" ? () => true : tracing === "off" ? () => false : tracing
  const base: Record<string, unknown> = { [Attr.dbSystem]: target.system }
  if (target.namespace !== undefined) base[Attr.dbNamespace] = String(target.namespace)
  if (target.address !== undefined) base[Attr.serverAddress] = target.address
  if (target.port !== undefined) base[Attr.serverPort] = target.port

  // The success-path labels of each operation, made once.
  const successLabels = new Map<
    OperationName,
    readonly [ReadonlyArray<MetricLabel.MetricLabel>, ReadonlyArray<MetricLabel.MetricLabel>]
  >()
  const record = (
    name: OperationName,
    startNanos: bigint,
    endNanos: bigint,
    exit: Exit.Exit<unknown, unknown>,
    extra: ReadonlyArray<MetricLabel.MetricLabel>
  ) => {
    let known = successLabels.get(name)
    if (known === undefined) {
      known = [
        labels(Attr.dbOperation, name, Attr.dbSystem, target.system),
        labels(Attr.dbOperation, name, Attr.outcome, "success")
      ]
      successLabels.set(name, known)
    }
    const seconds = Number(endNanos - startNanos) / 1e9
    operationDuration.unsafeUpdate(seconds, withExtra(known[0], extra))
    if (exit._tag === "Success") {
      operations.unsafeUpdate(1, withExtra(known[1], extra))
    } else {
      operations.unsafeUpdate(
        1,
        withExtra(labels(Attr.dbOperation, name, Attr.outcome, "failure", Attr.errorType, errorTypeOf(exit)), extra)
      )
    }
    if (name === SpanName.wait) {
      waitDuration.unsafeUpdate(
        seconds,
        withExtra(labels(Attr.outcome, exit._tag === "Success" ? "success" : errorTypeOf(exit)), extra)
      )
    }
  }

  const annotate = (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>) => {
    if (exit._tag === "Success") return
    span.attribute(Attr.errorType, errorTypeOf(exit))
    const reason = reasonOf(exit)
    if (reason !== undefined) span.attribute(Attr.errorReason, reason)
  }

  const spanOptions = (
    attributes: Record<string, unknown> | undefined,
    links: ReadonlyArray<Tracer.SpanLink> | undefined
  ): Tracer.SpanOptions => ({
    kind: "client",
    captureStackTrace: false,
    attributes: attributes === undefined ? base : { ...base, ...attributes },
    ...(links === undefined ? {} : { links })
  })

  // The attributes are made by `attributesOf(p, q)` once a span is made, so that the call under
  // the default tracer allocates no more than the one node that reads the fiber's tracer (the
  // tracer is the fiber's, `Effect.withTracer` may set it per call: it cannot be read once).
  const wrap = <A, E, R, P, Q>(
    name: OperationName,
    attributesOf: (p: P, q: Q) => Record<string, unknown> | undefined,
    p: P,
    q: Q,
    self: Effect.Effect<A, E, R>,
    links: ReadonlyArray<Tracer.SpanLink> | undefined
  ): Effect.Effect<A, E, R> => {
    const spanned = traced(name)
    if (!spanned && !metrics) return self
    if (!metrics) {
      return Effect.withFiberRuntime<A, E, R>((fiber) =>
        fiber.currentTracer === defaultTracer
          ? self
          : Effect.useSpan(name, spanOptions(attributesOf(p, q), links), (span) =>
              Effect.withParentSpan(
                Effect.onExit(self, (exit) => Effect.sync(() => annotate(span, exit))),
                span
              )
            )
      )
    }
    // Metrics on from here.
    return withMetricLabels((extra) =>
      Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeNanos()
        const onExit = (exit: Exit.Exit<unknown, unknown>, span: Tracer.Span | undefined) =>
          Effect.sync(() => {
            if (span !== undefined) annotate(span, exit)
            record(name, start, clock.unsafeCurrentTimeNanos(), exit, extra)
          })
        const untraced = Effect.onExit(self, (exit) => onExit(exit, undefined))
        if (!spanned) return untraced
        return Effect.tracerWith((tracer) =>
          tracer === defaultTracer
            ? untraced
            : Effect.useSpan(name, spanOptions(attributesOf(p, q), links), (span) =>
                Effect.withParentSpan(
                  Effect.onExit(self, (exit) => onExit(exit, span)),
                  span
                )
              )
        )
      })
    )
  }
  const effect: Instrument["effect"] = (name, attributes, self, links) =>
    wrap(name, given, attributes, undefined, self, links)
  const task: Instrument["task"] = (name, taskId, state, self, links) =>
    wrap(name, taskAttributes, taskId, state, self, links)

  const stream: Instrument["stream"] = (name, attributes, self, onItem) => {
    const spanned = traced(name)
    if (!spanned && !metrics) return self
    // `self` in a new span, `done` run when it ends; the span ends with the outer scope.
    const inSpan = (
      clock: Clock.Clock,
      done: (span: Tracer.Span) => (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
    ) =>
      Effect.map(
        Effect.makeSpanScoped(name, {
          kind: "client",
          captureStackTrace: false,
          attributes: { ...base, ...attributes }
        }),
        (span) =>
          Stream.unwrapScoped(Effect.as(Effect.addFinalizer(done(span)), self)).pipe(
            onItem === undefined
              ? (s) => s
              : Stream.tap((item) => Effect.sync(() => onItem(span, item, clock.unsafeCurrentTimeNanos()))),
            Stream.provideService(Tracer.ParentSpan, span)
          )
      )
    if (!metrics) {
      // Spans only: under the default tracer the stream is `self`, chosen by one Channel.unwrap.
      // A Stream.unwrapScoped there (a Scope and a finalizer every run) was measured at ~130 kB of
      // garbage a run: a third of what draining a ready `getMany` cost beyond `getAll`.
      return Stream.fromChannel(
        Channel.unwrap(
          Effect.tracerWith((tracer) =>
            Effect.succeed(
              Stream.toChannel(
                tracer === defaultTracer
                  ? self
                  : Stream.unwrapScoped(
                      Effect.clockWith((clock) =>
                        inSpan(clock, (span) => (exit) => Effect.sync(() => annotate(span, exit)))
                      )
                    )
              )
            )
          )
        )
      )
    }
    // Metrics on from here.
    return Stream.unwrapScoped(
      withMetricLabels((extra) =>
        Effect.clockWith((clock) => {
          const start = clock.unsafeCurrentTimeNanos()
          const done = (span: Tracer.Span | undefined) => (exit: Exit.Exit<unknown, unknown>) =>
            Effect.sync(() => {
              if (span !== undefined) annotate(span, exit)
              record(name, start, clock.unsafeCurrentTimeNanos(), exit, extra)
            })
          const untraced = Effect.as(Effect.addFinalizer(done(undefined)), self)
          if (!spanned) return untraced
          return Effect.tracerWith((tracer) => (tracer === defaultTracer ? untraced : inSpan(clock, done)))
        })
      )
    )
  }
  return { effect, task, stream }
}

/**
 * Effect's default tracer: what runs when the application installed none. Its spans reach no
 * exporter, and making one costs more than a whole `get` (bench/RESULTS.md), so under it the
 * operations make no span; any other tracer (an OpenTelemetry one, a test's) gets them all.
 */
const defaultTracer: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

const countOf = (ids: ReadonlyArray<string>): Record<string, unknown> => ({ [Attr.taskCount]: ids.length })

const given = (attributes: Record<string, unknown> | undefined): Record<string, unknown> | undefined => attributes

const taskAttributes = (taskId: string, state: string | undefined): Record<string, unknown> =>
  state === undefined ? { [Attr.taskId]: taskId } : { [Attr.taskId]: taskId, [Attr.taskState]: state }

/** The backend with a span and metrics around every operation (or `backend` itself when both are off). */
export const instrumentBackend = (
  backend: ResultBackend,
  target: Target,
  options: TelemetryOptions = {}
): ResultBackend => {
  if (options.tracing === "off" && options.metrics !== true) return backend
  const i = makeInstrument(target, options)
  return {
    ...backend,
    store: (taskId, state, result, options) =>
      i.task(SpanName.store, taskId, state, backend.store(taskId, state, result, options)),
    markAsStarted: (taskId, info, options) =>
      i.task(SpanName.store, taskId, "STARTED", backend.markAsStarted(taskId, info, options)),
    markAsDone: (taskId, result, options) =>
      i.task(SpanName.store, taskId, "SUCCESS", backend.markAsDone(taskId, result, options)),
    markAsFailure: (taskId, exception, options) =>
      i.task(SpanName.store, taskId, "FAILURE", backend.markAsFailure(taskId, exception, options)),
    markAsRetry: (taskId, exception, options) =>
      i.task(SpanName.store, taskId, "RETRY", backend.markAsRetry(taskId, exception, options)),
    markAsRevoked: (taskId, reason, options) =>
      i.task(SpanName.store, taskId, "REVOKED", backend.markAsRevoked(taskId, reason, options)),
    get: (taskId) => i.task(SpanName.get, taskId, undefined, backend.get(taskId)),
    getMany: (taskIds, options) => {
      const ids = Array.from(taskIds)
      return i.stream(SpanName.getMany, countOf(ids), backend.getMany(ids, options))
    },
    getAll: (taskIds, options) => {
      const ids = Array.from(taskIds)
      return i.effect(SpanName.getAll, countOf(ids), backend.getAll(ids, options))
    },
    waitFor: (taskId, options) =>
      i.task(
        SpanName.wait,
        taskId,
        undefined,
        backend.waitFor(taskId, options),
        options?.link === undefined
          ? undefined
          : [{ _tag: "SpanLink", span: options.link, attributes: { "celery.link": "publish" } }]
      ),
    forget: (taskId) => i.task(SpanName.forget, taskId, undefined, backend.forget(taskId)),
    exists: (taskId) => i.task(SpanName.exists, taskId, undefined, backend.exists(taskId)),
    saveGroup: (groupId, results) =>
      i.effect(
        SpanName.saveGroup,
        { [Attr.groupId]: groupId, [Attr.taskCount]: results.length },
        backend.saveGroup(groupId, results)
      ),
    restoreGroup: (groupId) =>
      i.effect(SpanName.restoreGroup, { [Attr.groupId]: groupId }, backend.restoreGroup(groupId)),
    deleteGroup: (groupId) => i.effect(SpanName.deleteGroup, { [Attr.groupId]: groupId }, backend.deleteGroup(groupId)),
    setChordSize: (groupId, size) =>
      i.effect(
        SpanName.setChordSize,
        { [Attr.groupId]: groupId, [Attr.taskCount]: size },
        backend.setChordSize(groupId, size)
      ),
    addToChord: (groupId) => i.effect(SpanName.addToChord, { [Attr.groupId]: groupId }, backend.addToChord(groupId)),
    onChordPartReturn: (part, state, result) =>
      i.effect(
        SpanName.chordPartReturn,
        { [Attr.groupId]: part.groupId, [Attr.taskId]: part.taskId, [Attr.taskState]: state },
        backend.onChordPartReturn(part, state, result)
      )
  }
}

/**
 * The consumer with a span around each `watch`: it covers the subscription's life, and each
 * delivered state is an event on it. The watched-tasks gauge counts the watch's ids while it runs.
 */
export const instrumentConsumer = (
  consumer: ResultConsumer,
  target: Target,
  options: TelemetryOptions = {}
): ResultConsumer => {
  if (options.tracing === "off" && options.metrics !== true) return consumer
  const i = makeInstrument(target, options)
  const metrics = options.metrics ?? false
  return {
    ...consumer,
    watch: (taskIds, watchOptions) => {
      const ids = Array.from(taskIds)
      const inner = consumer.watch(ids, watchOptions)
      // The count, not `ids`, in the closures: the stream would keep the copy (8 bytes a task).
      const count = ids.length
      const counted = metrics
        ? Stream.unwrapScoped(
            withMetricLabels((extra) =>
              Effect.as(
                Effect.acquireRelease(
                  Effect.sync(() => watchedTasks.unsafeModify(count, extra)),
                  () => Effect.sync(() => watchedTasks.unsafeModify(-count, extra))
                ),
                inner
              )
            )
          )
        : inner
      return i.stream(SpanName.watch, countOf(ids), counted, (span, item, nanos) => {
        if (item._tag === "Right") {
          span.event(EventName.delivered, nanos, {
            [Attr.taskId]: item.right.taskId,
            [Attr.taskState]: item.right.status
          })
        } else {
          span.event(EventName.delivered, nanos, {
            [Attr.taskId]: item.left.id,
            [Attr.errorType]: item.left._tag
          })
        }
      })
    }
  }
}
