/**
 * Celery's connection retry policy (`retry_policy`, kombu `retry_over_time`) as an Effect Schedule,
 * and the `result_backend_always_retry` policy.
 *
 * STUB: implemented by the RetryPolicy work package.
 */

/** `retry_policy`: intervals in seconds, as Celery configures them. */
export interface RetryPolicy {
  /** null retries forever (unless `timeout`). Default 20 (21 attempts). */
  readonly maxRetries: number | null
  readonly intervalStart: number
  readonly intervalStep: number
  readonly intervalMax: number
  /** Give up once this many seconds have passed since the first attempt (checked after a failure). */
  readonly timeout?: number | undefined
}

export const defaults: RetryPolicy = { maxRetries: 20, intervalStart: 0, intervalStep: 1, intervalMax: 1 }

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
