/**
 * Options every backend implementation accepts, with Celery's defaults, and their resolution.
 */
import * as Duration from "effect/Duration"
import type { KeyLayoutOptions } from "./Keys.js"
import type { DateStyle } from "./Meta.js"
import type { AlwaysRetryPolicy, RetryPolicy } from "./RetryPolicy.js"
import type { Tracing } from "./Telemetry.js"

export interface BackendOptions {
  /**
   * `result_expires`: TTL of stored results and chord keys. Default 1 day. `null` or anything under
   * one second (Celery truncates to whole seconds) stores without expiry.
   */
  readonly expires?: Duration.DurationInput | null | undefined
  /** `date_done` style: "offset" (Celery ≥ 5.4, default) or "naive" (≤ 5.3). */
  readonly dateStyle?: DateStyle | undefined
  /** `result_extended`: also write name/args/kwargs/worker/retries/queue when a request is given. Default false. */
  readonly resultExtended?: boolean | undefined
  /** `result_chord_ordered`: `.j` as a ZSET by group_index (default) or a LIST. */
  readonly chordOrdered?: boolean | undefined
  /** `global_keyprefix` and its separator rule. */
  readonly keys?: KeyLayoutOptions | undefined
  /** `result_backend_transport_options.retry_policy`, merged over Celery's defaults. */
  readonly retryPolicy?: Partial<RetryPolicy> | undefined
  /**
   * `result_backend_always_retry`: also retry reads (and the whole store) on connection errors with
   * full-jitter exponential backoff. `true` uses Celery's defaults.
   */
  readonly alwaysRetry?: boolean | Partial<AlwaysRetryPolicy> | undefined
  /** Largest encoded value, in characters (Celery's `_MAX_STR_VALUE_SIZE`, 512 MiB). */
  readonly maxValueSize?: number | undefined
  /**
   * Spans around every operation (`Telemetry`): `"on"` (default), `"off"`, or a rule deciding per
   * operation name. Under Effect's default tracer (no exporter installed) no span is made, so the
   * default costs nothing measurable (bench/tracing.ts: store ×0.97, get ×1.00 of `"off"`); with an
   * OpenTelemetry tracer every operation is a span.
   */
  readonly tracing?: Tracing | undefined
  /**
   * Effect metrics for every operation (`Telemetry`); default false. They cost about a third of
   * store and get throughput on a pipelined client (bench/tracing.ts), so they are opt-in.
   */
  readonly metrics?: boolean | undefined
}

export const DEFAULT_EXPIRES_SECONDS = 86400
export const MAX_STR_VALUE_SIZE = 536870912

/** The TTL in whole seconds, or undefined for none (Celery's `prepare_expires(..., int)`). */
export const expiresSeconds = (options: BackendOptions): number | undefined => {
  if (options.expires === null) return undefined
  if (options.expires === undefined) return DEFAULT_EXPIRES_SECONDS
  const seconds = Math.trunc(Duration.toSeconds(Duration.decode(options.expires)))
  return seconds > 0 ? seconds : undefined
}
