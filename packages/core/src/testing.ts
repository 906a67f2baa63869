/**
 * Test kit for result backends, as its own entry point (`@effect-celery/core/testing`) so that the
 * main entry never loads `@effect/vitest`. Only this entry needs it: `@effect/vitest` is an
 * optional peer dependency of `@effect-celery/core`, to install when you run the suite.
 * `SpanRecorder` (a tracer that keeps its spans) needs nothing beyond `effect`.
 *
 * ```ts
 * import { Conformance } from "@effect-celery/core/testing"
 * Conformance.suite("my backend", makeLayer)
 * ```
 *
 * @since 0.2.0
 */
export * as Conformance from "./testing/Conformance.js"
/** A tracer for tests that keeps the spans (and their events) it makes. @since 0.2.0 */
export * as SpanRecorder from "./testing/SpanRecorder.js"
