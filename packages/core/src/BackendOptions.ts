/**
 * Options every backend implementation accepts, with Celery's defaults, and their resolution.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { ImproperlyConfigured } from "./Errors.js"
import type { KeyLayoutOptions } from "./Keys.js"
import type { DateStyle } from "./Meta.js"
import type { AlwaysRetryPolicy, RetryPolicy } from "./RetryPolicy.js"
import type { Tracing } from "./Telemetry.js"

export interface BackendOptions {
  /**
   * `result_expires`: TTL of stored results and chord keys. Default 1 day. Celery truncates it to
   * whole seconds (`int()`, toward zero); `null`, `Duration.infinity` or anything that truncates to
   * 0 (e.g. 500 ms, or −0.5 s) stores without expiry. One second or more below zero, NaN, or more
   * than `MAX_EXPIRES_SECONDS` fails building the backend with `ImproperlyConfigured` (Celery
   * would send it as SETEX/EXPIRE and have every store refused by Redis with "invalid expire time").
   * A number is milliseconds, as everywhere in Effect.
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

/**
 * The largest `result_expires` accepted, in seconds: 2^53−1 (about 285 million years), the
 * largest integer a JavaScript number holds exactly. Redis takes any EXPIRE up to (2^63−1 − now
 * in ms) / 1000 seconds, which is more; a larger number would be sent as "1e+22", which Redis
 * refuses as not an integer.
 */
export const MAX_EXPIRES_SECONDS = Number.MAX_SAFE_INTEGER

const outOfRange = (shown: string, why: string): ImproperlyConfigured =>
  new ImproperlyConfigured({
    message: `result_expires out of range: ${shown} ${why}; expected null (no expiry) or 0 to ${MAX_EXPIRES_SECONDS} seconds`
  })

const NEGATIVE_STRING = /^-(\d+(?:\.\d+)?\s+\S+)$/

/**
 * The signed length of an `expires` input in seconds. Effect's `Duration` has no negative values
 * (`Duration.decode(-5000)` is zero), so the sign is read from the raw input: a negative
 * `result_expires` must be refused, not silently turned into "no expiry".
 */
const signedSeconds = (input: Duration.DurationInput): number => {
  if (typeof input === "number") return input / 1000
  if (typeof input === "bigint") return Number(input) / 1e9
  if (Array.isArray(input) && input.length === 2 && typeof input[0] === "number" && typeof input[1] === "number") {
    return input[0] + input[1] / 1e9
  }
  if (typeof input === "string") {
    const negative = NEGATIVE_STRING.exec(input.trim())
    if (negative !== null) return -Duration.toSeconds(Duration.decode(negative[1] as Duration.DurationInput))
  }
  return Duration.toSeconds(Duration.decode(input))
}

/**
 * `result_expires` as the TTL in whole seconds, or undefined for none (Celery's
 * `prepare_expires(..., int)`), or `ImproperlyConfigured` when no EXPIRE could carry it: one second
 * or more below zero, NaN, or above `MAX_EXPIRES_SECONDS`. No value that Redis would refuse as
 * "invalid expire time" reaches it.
 */
export const expiresSeconds = (options: BackendOptions): Either.Either<number | undefined, ImproperlyConfigured> => {
  const input = options.expires
  if (input === null) return Either.right(undefined)
  if (input === undefined) return Either.right(DEFAULT_EXPIRES_SECONDS)
  const shown =
    typeof input === "string"
      ? JSON.stringify(input)
      : Duration.isDuration(input)
        ? Duration.format(input)
        : String(input)
  const seconds = signedSeconds(input)
  if (Number.isNaN(seconds)) return Either.left(outOfRange(shown, "is not a number"))
  // `Duration.infinity` (or Infinity ms): no expiry, as `null`.
  if (seconds === Infinity) return Either.right(undefined)
  const whole = Math.trunc(seconds)
  if (whole < 0) {
    return Either.left(outOfRange(shown, "is negative (Redis refuses a negative SETEX/EXPIRE; use null for no expiry)"))
  }
  if (whole > MAX_EXPIRES_SECONDS) return Either.left(outOfRange(shown, "is too large"))
  return Either.right(whole > 0 ? whole : undefined)
}

const NONE = /^(none|null)?$/i

/**
 * `result_expires` from configuration, read as Celery reads the setting: a number of seconds
 * (`result_expires = 3600`, a float), an Effect duration string (`"1 day"`), or `None` / `null` /
 * empty for no expiry. Out-of-range values fail with a `ConfigError` carrying the same message as
 * `expiresSeconds` (where `Config.duration` would turn "-5 seconds" into zero, i.e. no expiry).
 *
 * ```ts
 * RedisBackend.layerConfig({ url: Config.redacted("RESULT_BACKEND"), expires: BackendOptions.expiresConfig("RESULT_EXPIRES") })
 * ```
 */
export const expiresConfig = (name?: string): Config.Config<Duration.Duration | null> => {
  const config = Config.mapOrFail(
    Config.string(),
    (raw): Either.Either<Duration.Duration | null, ConfigError.ConfigError> => {
      const text = raw.trim()
      if (NONE.test(text)) return Either.right(null)
      const number = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : undefined
      const input: Duration.DurationInput | undefined =
        number !== undefined
          ? number * 1000
          : Duration.decodeUnknown(text).pipe((o) => (o._tag === "Some" ? (text as Duration.DurationInput) : undefined))
      if (input === undefined) {
        return Either.left(
          ConfigError.InvalidData(
            [],
            `result_expires: expected seconds, a duration or None, got ${JSON.stringify(raw)}`
          )
        )
      }
      return Either.match(expiresSeconds({ expires: input }), {
        onLeft: (error) => Either.left(ConfigError.InvalidData([], error.message)),
        onRight: (seconds) => Either.right(seconds === undefined ? null : Duration.seconds(seconds))
      })
    }
  )
  return name === undefined ? config : Config.nested(config, name)
}
