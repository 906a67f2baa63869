/**
 * Test kit for result backends, as its own entry point (`@effect-celery/core/testing`) so that the
 * main entry never loads `@effect/vitest`. Only this entry needs it: `@effect/vitest` is an
 * optional peer dependency of `@effect-celery/core`, to install when you run the suite.
 *
 * ```ts
 * import { Conformance } from "@effect-celery/core/testing"
 * Conformance.suite("my backend", makeLayer)
 * ```
 *
 * @since 0.2.0
 */
export * as Conformance from "./testing/Conformance.js"
