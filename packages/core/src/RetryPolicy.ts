/**
 * Celery's connection retry policy (`retry_policy`, kombu `retry_over_time`) as an Effect Schedule,
 * and the `result_backend_always_retry` policy (full-jitter exponential backoff).
 *
 * The kombu schedule is written with `Schedule.makeWithState` rather than composed from
 * `recurs`/`addDelay`: kombu's interval generator (`fxrange`) has quirks (the cap is
 * `interval_max + interval_start`, a zero cap means "no cap", floats accumulate by repeated
 * addition, a negative interval sleeps only its fractional part) that a composition would not
 * reproduce bit for bit, and the log line needs the retry count and the interval together.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import { ConnectionError, E_RETRY_LIMIT_EXCEEDED, isTransient, RetryLimitExceeded } from "./Errors.js"
import * as Telemetry from "./Telemetry.js"

/** `retry_policy`: intervals in seconds, as Celery configures them. */
export interface RetryPolicy {
  /** null retries forever (unless `timeout`). Default 20 (21 attempts). 0 (or less) never retries. */
  readonly maxRetries: number | null
  readonly intervalStart: number
  readonly intervalStep: number
  readonly intervalMax: number
  /**
   * Give up once this many seconds have passed (checked after a failure, strict `>`).
   * `undefined` or `0` means no timeout, as in kombu (`if timeout`).
   */
  readonly timeout?: number | undefined
}

export const defaults: RetryPolicy = { maxRetries: 20, intervalStart: 0, intervalStep: 1, intervalMax: 1 }

/**
 * Celery's `dict(Backend.retry_policy, **transport_options['retry_policy'])`: the given fields
 * over the defaults. Fields that are `undefined` keep the default.
 */
export const merge = (partial?: Partial<RetryPolicy>, base: RetryPolicy = defaults): RetryPolicy => {
  if (partial === undefined) return base
  const out: { -readonly [K in keyof RetryPolicy]: RetryPolicy[K] } = { ...base }
  if (partial.maxRetries !== undefined) out.maxRetries = partial.maxRetries
  if (partial.intervalStart !== undefined) out.intervalStart = partial.intervalStart
  if (partial.intervalStep !== undefined) out.intervalStep = partial.intervalStep
  if (partial.intervalMax !== undefined) out.intervalMax = partial.intervalMax
  if (partial.timeout !== undefined) out.timeout = partial.timeout
  return out
}

// ---------------------------------------------------------------------------------------------
// kombu's interval generator

// Python truthiness of a float: only 0 / -0 are falsy (NaN is truthy, unlike in JS).
const pyFalsy = (x: number): boolean => x === 0

/** The stop value kombu passes to `fxrange`: `interval_max + interval_start`. */
const fxStop = (policy: RetryPolicy): number => policy.intervalMax + policy.intervalStart

/**
 * One step of `fxrange(start, stop, step, repeatlast=True)` from cursor `cur`: the yielded value
 * and the next cursor. Past `stop` the cursor no longer moves and `cur - step` repeats forever.
 */
const fxNext = (cur: number, stop: number, step: number): readonly [number, number] =>
  pyFalsy(stop) || cur <= stop ? [cur, cur + step] : [cur - step, cur]

/**
 * The intervals (seconds) kombu's `retry_over_time` sleeps between attempts:
 * `fxrange(interval_start, interval_max + interval_start, interval_step, repeatlast=True)`.
 * Infinite; take what you need. Defaults give `0, 1, 1, 1, …`.
 */
export const intervals = (policy: RetryPolicy): Iterable<number> => ({
  *[Symbol.iterator]() {
    const stop = fxStop(policy)
    let cur = policy.intervalStart
    while (true) {
      const [value, next] = fxNext(cur, stop, policy.intervalStep)
      cur = next
      yield value
    }
  }
})

/**
 * How long kombu actually sleeps for an interval `tts`, in seconds: nothing when `tts` is 0,
 * else `int(tts)` one-second sleeps (none when negative) plus `abs(int(tts) - tts)`.
 * Python would raise on NaN/±Infinity; we sleep 0 for NaN and forever for +Infinity.
 */
export const sleepSeconds = (tts: number): number => {
  if (pyFalsy(tts)) return 0
  if (Number.isNaN(tts)) return 0
  if (!Number.isFinite(tts)) return tts > 0 ? Number.POSITIVE_INFINITY : 0
  const whole = Math.trunc(tts)
  return Math.max(0, whole) + Math.abs(whole - tts)
}

const secondsToDuration = (seconds: number): Duration.Duration =>
  seconds === Number.POSITIVE_INFINITY ? Duration.infinity : Duration.millis(seconds * 1000)

// ---------------------------------------------------------------------------------------------
// celery.utils.time.humanize_seconds

/** Python's `format(x, '.2f')`: exact decimal rounding, ties to even, `-0.00`, `inf`/`nan`. */
export const formatFixed2 = (x: number): string => {
  if (Number.isNaN(x)) return "nan"
  if (x === Number.POSITIVE_INFINITY) return "inf"
  if (x === Number.NEGATIVE_INFINITY) return "-inf"
  const sign = x < 0 || Object.is(x, -0) ? "-" : ""
  const a = Math.abs(x)
  if (a >= 1e21) return `${sign}${BigInt(a).toString()}.00` // integral; toFixed would switch to exponent form
  // toFixed rounds the exact binary value too, but breaks exact ties upward. A double is an exact
  // tie at the hundredths only when its fraction is an odd number of eighths (.125, .375, …).
  const eighths = a * 8
  if (Number.isInteger(eighths) && eighths % 2 === 1) {
    const lo = (BigInt(eighths) * 25n - 1n) / 2n // floor(a * 100)
    const even = lo % 2n === 0n ? lo : lo + 1n
    return `${sign}${(even / 100n).toString()}.${(even % 100n).toString().padStart(2, "0")}`
  }
  return sign + a.toFixed(2)
}

const TIME_UNITS: ReadonlyArray<readonly [string, number]> = [
  ["day", 60 * 60 * 24],
  ["hour", 60 * 60],
  ["minute", 60],
  ["second", 1]
]

export interface HumanizeOptions {
  readonly sep?: string | undefined
  /** The literal for less than a second. Default `"now"`. */
  readonly now?: string | undefined
  readonly microseconds?: boolean | undefined
}

/**
 * `celery.utils.time.humanize_seconds(secs, prefix, sep, now, microseconds)`: `"in 1.00 second"`,
 * `"in 10.00 seconds"`, `"in 1.50 minutes"`, `"now"` under one second (after rounding to 2 places).
 */
export const humanizeSeconds = (secs: number, prefix = "", options: HumanizeOptions = {}): string => {
  const sep = options.sep ?? ""
  const rounded = Number(formatFixed2(secs).replace("inf", "Infinity").replace("nan", "NaN"))
  for (const [unit, divider] of TIME_UNITS) {
    if (rounded >= divider) {
      const w = rounded / divider
      return `${prefix}${sep}${formatFixed2(w)} ${w !== 1 ? `${unit}s` : unit}`
    }
  }
  if (options.microseconds === true && rounded > 0) return `${prefix}${sep}${formatFixed2(rounded)} seconds`
  return options.now ?? "now"
}

/** `E_LOST` in `celery/backends/redis.py`, with its `%s` placeholders. */
export const E_LOST = "Connection to Redis lost: Retry (%s/%s) %s."

/**
 * The line `RedisBackend.on_connection_error` logs at ERROR before each retry:
 * `Connection to Redis lost: Retry (1/20) in 1.00 second.` (`max_retries or 'Inf'`, so a null or
 * 0 maximum shows `Inf`).
 */
export const connectionLostMessage = (retries: number, maxRetries: number | null, tts: number): string => {
  const args = [
    String(retries),
    maxRetries === null || maxRetries === 0 ? "Inf" : String(maxRetries),
    humanizeSeconds(tts, "in ")
  ]
  let i = 0
  return E_LOST.replace(/%s/g, () => args[i++]!)
}

// ---------------------------------------------------------------------------------------------
// The kombu schedule

/** What the kombu schedule outputs for each failure it sees. */
export type RetryStep =
  | {
      readonly _tag: "Retry"
      /** kombu's `retries`: how many retries were made before this one (0 for the first). */
      readonly retries: number
      /** The interval the errback returned (`next(interval_range)`), in seconds. */
      readonly tts: number
      /** What is actually slept before the next attempt (see `sleepSeconds`), at Duration's nanosecond resolution. */
      readonly delay: Duration.Duration
    }
  | {
      readonly _tag: "GiveUp"
      /** How many retries were made in total. */
      readonly retries: number
      readonly reason: "MaxRetries" | "Timeout" | "NotRetryable"
    }

interface KombuState {
  readonly retries: number
  /** The `fxrange` cursor. */
  readonly cur: number
  /** Clock millis after which a failure is final; undefined when there is no timeout. */
  readonly end: number | undefined
  readonly started: boolean
}

interface KombuOptions {
  /** When the operation started (kombu computes `end` before the first attempt). */
  readonly startMillis?: number | undefined
  readonly isRetryable?: ((input: unknown) => boolean) | undefined
}

const kombuSchedule = (policy: RetryPolicy, options: KombuOptions = {}): Schedule.Schedule<RetryStep, unknown> => {
  const stop = fxStop(policy)
  const hasTimeout = policy.timeout !== undefined && !pyFalsy(policy.timeout)
  const initial: KombuState = { retries: 0, cur: policy.intervalStart, end: undefined, started: false }
  return Schedule.makeWithState<KombuState, unknown, RetryStep>(initial, (now, input, s0) => {
    const state: KombuState = s0.started
      ? s0
      : {
          ...s0,
          started: true,
          end: hasTimeout ? (options.startMillis ?? now) + (policy.timeout ?? 0) * 1000 : undefined
        }
    const giveUp = (reason: "MaxRetries" | "Timeout" | "NotRetryable") =>
      Effect.as(
        // An error that was never a connection error is not a retry loop giving up.
        reason === "NotRetryable" && !(input instanceof ConnectionError)
          ? Effect.void
          : Telemetry.onGiveUp("kombu", reason),
        [state, { _tag: "GiveUp", retries: state.retries, reason }, ScheduleDecision.done] as const
      )
    if (options.isRetryable !== undefined && !options.isRetryable(input)) return giveUp("NotRetryable")
    // The order of kombu's checks: max_retries first, then the timeout, then the errback.
    if (policy.maxRetries !== null && state.retries >= policy.maxRetries) return giveUp("MaxRetries")
    if (state.end !== undefined && now > state.end) return giveUp("Timeout")
    const [tts, cur] = fxNext(state.cur, stop, policy.intervalStep)
    const seconds = sleepSeconds(tts)
    const delay = secondsToDuration(seconds)
    const wakeAt = seconds === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : now + seconds * 1000
    const step: RetryStep = { _tag: "Retry", retries: state.retries, tts, delay }
    const line = connectionLostMessage(state.retries, policy.maxRetries, tts)
    return Effect.as(Effect.zipRight(Effect.logError(line), Telemetry.onRetry("kombu")), [
      { ...state, retries: state.retries + 1, cur },
      step,
      ScheduleDecision.continueWith(ScheduleInterval.after(wakeAt))
    ] as const)
  })
}

/**
 * kombu's `retry_over_time` as a Schedule: each input is a failure; the delays are `intervals`
 * (slept as kombu sleeps them), it stops after `maxRetries` retries (20 ⇒ 21 attempts; null ⇒
 * forever) or once the Clock is past `timeout` seconds after the first failure it sees, and logs
 * every retry at ERROR exactly as Celery's `on_connection_error` does.
 *
 * kombu measures the timeout from before the first attempt; a Schedule only sees failures, so
 * this standalone schedule starts the timeout at the first failure. `retry` and
 * `retryReconnect` read the Clock before the first attempt and are exact. Time is Effect's Clock
 * in milliseconds (kombu: float seconds), so a failure landing exactly on the deadline with
 * fractional intervals may be judged differently by a rounding error.
 */
export const schedule = (policy: RetryPolicy = defaults): Schedule.Schedule<RetryStep, unknown> => kombuSchedule(policy)

const pluralRetries = (n: number): string => `${n} ${n === 1 ? "retry" : "retries"}`

const retryWith =
  (
    policy: RetryPolicy,
    onExhausted: (
      lastCause: ConnectionError,
      retries: number,
      reason: "MaxRetries" | "Timeout"
    ) => Effect.Effect<never, RetryLimitExceeded>
  ) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, ConnectionError> | RetryLimitExceeded, R> =>
    Effect.flatMap(Clock.currentTimeMillis, (startMillis) =>
      Effect.retryOrElse(
        effect,
        // A shut-down client ends the loop at once (with the retries made so far).
        kombuSchedule(policy, { startMillis, isRetryable: isTransient }),
        (e: E, out: RetryStep): Effect.Effect<never, Exclude<E, ConnectionError> | RetryLimitExceeded> => {
          if (e instanceof ConnectionError) {
            return onExhausted(
              e,
              out.retries,
              out._tag === "GiveUp" && out.reason === "Timeout" ? "Timeout" : "MaxRetries"
            )
          }
          // Not a ConnectionError, so it is in Exclude<E, ConnectionError> (TS cannot narrow a type parameter).
          return Effect.fail(e as Exclude<E, ConnectionError>)
        }
      )
    )

/**
 * `RedisBackend.ensure`: run `effect`, retrying only `ConnectionError`s with the kombu schedule
 * (timeout measured from before the first attempt, as kombu does). Other errors pass through on
 * the first occurrence. When the policy gives up, fails with `RetryLimitExceeded` carrying the
 * last connection error (Celery re-raises that error itself).
 */
export const retry = (policy: RetryPolicy = defaults) =>
  retryWith(policy, (lastCause, retries, reason) =>
    Effect.fail(
      new RetryLimitExceeded({
        message: `Connection to Redis lost and the retry policy gave up after ${pluralRetries(retries)}${
          reason === "Timeout" ? " (timeout)" : ""
        }: ${lastCause.message}`,
        retries,
        lastCause
      })
    )
  )

/**
 * `ResultConsumer.reconnect_on_error`: like `retry`, but when the policy gives up it logs
 * `E_RETRY_LIMIT_EXCEEDED` at the highest level (Python CRITICAL ⇒ Effect Fatal) and fails with
 * that message, as Celery does before re-raising.
 */
export const retryReconnect = (policy: RetryPolicy = defaults) =>
  retryWith(policy, (lastCause, retries) =>
    Effect.zipRight(
      Effect.logFatal(E_RETRY_LIMIT_EXCEEDED),
      Effect.fail(new RetryLimitExceeded({ message: E_RETRY_LIMIT_EXCEEDED, retries, lastCause }))
    )
  )

// ---------------------------------------------------------------------------------------------
// result_backend_always_retry

/** `result_backend_always_retry` with `result_backend_max_retries` and the sleep bounds. */
export interface AlwaysRetryPolicy {
  readonly maxRetries: number
  readonly baseSleepMillis: number
  readonly maxSleepMillis: number
}

export const alwaysRetryDefaults: AlwaysRetryPolicy = {
  maxRetries: Number.POSITIVE_INFINITY,
  baseSleepMillis: 10,
  maxSleepMillis: 10000
}

/**
 * `BackendOptions.alwaysRetry` to a policy: absent/false ⇒ undefined (disabled), true ⇒ Celery's
 * defaults, an object ⇒ its fields over the defaults.
 */
export const resolveAlwaysRetry = (
  option: boolean | Partial<AlwaysRetryPolicy> | undefined
): AlwaysRetryPolicy | undefined => {
  if (option === undefined || option === false) return undefined
  if (option === true) return alwaysRetryDefaults
  return {
    maxRetries: option.maxRetries ?? alwaysRetryDefaults.maxRetries,
    baseSleepMillis: option.baseSleepMillis ?? alwaysRetryDefaults.baseSleepMillis,
    maxSleepMillis: option.maxSleepMillis ?? alwaysRetryDefaults.maxSleepMillis
  }
}

/**
 * The upper bound (inclusive, ms) of the `retries`-th sleep (1-based):
 * `min(max_ms, base_ms * 2 ** retries)`, floored at 0 as `get_exponential_backoff_interval` does.
 */
export const alwaysRetryCapMillis = (policy: AlwaysRetryPolicy, retries: number): number => {
  const exp = policy.baseSleepMillis === 0 ? 0 : policy.baseSleepMillis * 2 ** retries
  return Math.max(0, Math.floor(Math.min(policy.maxSleepMillis, exp)))
}

/** What the always-retry schedule outputs for each failure it sees. */
export type AlwaysRetryStep =
  | {
      readonly _tag: "Retry"
      /** 1-based: this is the `retries`-th retry. */
      readonly retries: number
      readonly delay: Duration.Duration
    }
  | {
      readonly _tag: "GiveUp"
      readonly retries: number
      readonly reason: "MaxRetries" | "NotRetryable"
    }

const alwaysSchedule = (
  policy: AlwaysRetryPolicy,
  isRetryable?: (input: unknown) => boolean
): Schedule.Schedule<AlwaysRetryStep, unknown> =>
  Schedule.makeWithState<number, unknown, AlwaysRetryStep>(0, (now, input, retries) => {
    if (isRetryable !== undefined && !isRetryable(input)) {
      return Effect.as(input instanceof ConnectionError ? Telemetry.onGiveUp("always", "NotRetryable") : Effect.void, [
        retries,
        { _tag: "GiveUp", retries, reason: "NotRetryable" },
        ScheduleDecision.done
      ] as const)
    }
    if (!(retries < policy.maxRetries)) {
      return Effect.as(Telemetry.onGiveUp("always", "MaxRetries"), [
        retries,
        { _tag: "GiveUp", retries, reason: "MaxRetries" },
        ScheduleDecision.done
      ] as const)
    }
    const next = retries + 1
    const cap = alwaysRetryCapMillis(policy, next)
    // `random.randrange(cap + 1)`: uniform over [0, cap].
    return Effect.flatMap(Random.nextIntBetween(0, cap + 1), (millis) =>
      Effect.as(Telemetry.onRetry("always"), [
        next,
        { _tag: "Retry", retries: next, delay: Duration.millis(millis) },
        ScheduleDecision.continueWith(ScheduleInterval.after(now + millis))
      ] as const)
    )
  })

/**
 * Celery's base-backend retry loop (`result_backend_always_retry`) as a Schedule: full-jitter
 * exponential backoff, the n-th sleep (n from 1) uniform over `[0, min(max, base * 2^n)]` ms, at
 * most `maxRetries` retries. Randomness comes from Effect's `Random` service (seedable).
 */
export const alwaysRetrySchedule = (
  policy: AlwaysRetryPolicy = alwaysRetryDefaults
): Schedule.Schedule<AlwaysRetryStep, unknown> => alwaysSchedule(policy)

/**
 * What `alwaysRetry` retries: a transient `ConnectionError`, or a `RetryLimitExceeded` of an inner
 * policy whose last cause was one (a shut-down client is neither).
 */
export const isAlwaysRetryable = (u: unknown): u is ConnectionError | RetryLimitExceeded =>
  isTransient(u) || (u instanceof RetryLimitExceeded && isTransient(u.lastCause))

/**
 * The outer retry of Celery ≥ 5.5 (`exception_safe_to_retry` = connection errors): retries the
 * whole operation on `ConnectionError`, and also on `RetryLimitExceeded` because that is how an
 * inner `retry` reports the connection error Celery would re-raise into this loop. Other errors
 * pass through. When exhausted, fails with `RetryLimitExceeded` (retries = outer retries,
 * lastCause = the last connection error); the caller maps it to its own error if it wants
 * Celery's `BackendStoreError("failed to store result on the backend")`.
 */
export const alwaysRetry =
  (policy: AlwaysRetryPolicy = alwaysRetryDefaults) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, ConnectionError> | RetryLimitExceeded, R> =>
    Effect.retryOrElse(
      effect,
      alwaysSchedule(policy, isAlwaysRetryable),
      (e: E, out: AlwaysRetryStep): Effect.Effect<never, Exclude<E, ConnectionError> | RetryLimitExceeded> => {
        if (e instanceof ConnectionError || e instanceof RetryLimitExceeded) {
          const lastCause = e instanceof ConnectionError ? e : e.lastCause
          return Effect.fail(
            new RetryLimitExceeded({
              message: `Backend operation failed after ${pluralRetries(out.retries)}: ${lastCause.message}`,
              retries: out.retries,
              lastCause
            })
          )
        }
        return Effect.fail(e as Exclude<E, ConnectionError>)
      }
    )
