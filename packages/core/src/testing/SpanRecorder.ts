/**
 * A tracer for tests: Effect's own tracer, keeping every span it makes (and every event recorded
 * on them) so a test can assert the span tree of the operations it ran. The conformance suite
 * uses it; it needs no OpenTelemetry package.
 *
 * ```ts
 * const rec = SpanRecorder.make()
 * yield* backend.markAsDone(id, 1).pipe(Effect.withTracer(rec.tracer))
 * const [span] = rec.named(Telemetry.SpanName.store)
 * ```
 *
 * Any tracer other than Effect's default one makes the library's operations record spans (under
 * the default one they make none), so this one does.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

/** An event recorded on a span (`span.event(name, time, attributes)`). */
export interface SpanEvent {
  readonly name: string
  /** Nanoseconds, from the clock of the fiber that recorded it. */
  readonly time: bigint
  readonly attributes: Readonly<Record<string, unknown>>
}

/** A recording tracer and what it recorded. */
export interface SpanRecorder {
  /** The tracer to install: `Effect.withTracer(rec.tracer)`. */
  readonly tracer: Tracer.Tracer
  /** The same as a layer (`Layer.setTracer`). */
  readonly layer: Layer.Layer<never>
  /** Every span made so far, in creation order. */
  readonly spans: ReadonlyArray<Tracer.Span>
  /** The spans with this name, in creation order. */
  readonly named: (name: string) => ReadonlyArray<Tracer.Span>
  /** The events recorded on a span, in order. */
  readonly events: (span: Tracer.Span) => ReadonlyArray<SpanEvent>
}

const native: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** A fresh recorder (one per test, so concurrent tests do not see each other's spans). */
export const make = (): SpanRecorder => {
  const spans: Array<Tracer.Span> = []
  const eventsOf = new WeakMap<Tracer.Span, Array<SpanEvent>>()
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      const events: Array<SpanEvent> = []
      eventsOf.set(span, events)
      const record = span.event.bind(span)
      // Kept on the side: the Span interface has no way to read events back.
      span.event = (name, time, attributes) => {
        events.push({ name, time, attributes: attributes ?? {} })
        record(name, time, attributes)
      }
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return {
    tracer,
    layer: Layer.setTracer(tracer),
    spans,
    named: (name) => spans.filter((s) => s.name === name),
    events: (span) => eventsOf.get(span) ?? []
  }
}

/** The parent span, when it is a span of this process (not an external one). */
export const parentOf = (span: Tracer.AnySpan): Tracer.Span | undefined => {
  if (span._tag !== "Span") return undefined
  const parent = Option.getOrUndefined(span.parent)
  return parent?._tag === "Span" ? parent : undefined
}

/** How the span ended, or undefined while it is open. */
export const exitOf = (span: Tracer.Span): Exit.Exit<unknown, unknown> | undefined =>
  span.status._tag === "Ended" ? span.status.exit : undefined
