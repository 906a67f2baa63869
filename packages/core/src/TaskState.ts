/**
 * Celery task states (`celery/states.py`): the built-ins, their sets and Celery's precedence.
 * Any other string is a custom state (e.g. `PROGRESS` from `update_state`).
 */
export const PENDING = "PENDING"
export const RECEIVED = "RECEIVED"
export const STARTED = "STARTED"
export const SUCCESS = "SUCCESS"
export const FAILURE = "FAILURE"
export const REVOKED = "REVOKED"
export const REJECTED = "REJECTED"
export const RETRY = "RETRY"
export const IGNORED = "IGNORED"

export type BuiltinState =
  | typeof PENDING
  | typeof RECEIVED
  | typeof STARTED
  | typeof SUCCESS
  | typeof FAILURE
  | typeof REVOKED
  | typeof REJECTED
  | typeof RETRY
  | typeof IGNORED

/** A task state: one of the built-ins or any custom string. */
export type TaskState = BuiltinState | (string & {})

export const READY_STATES: ReadonlySet<string> = new Set([SUCCESS, FAILURE, REVOKED])
export const UNREADY_STATES: ReadonlySet<string> = new Set([PENDING, RECEIVED, STARTED, REJECTED, RETRY])
export const EXCEPTION_STATES: ReadonlySet<string> = new Set([RETRY, FAILURE, REVOKED])
export const PROPAGATE_STATES: ReadonlySet<string> = new Set([FAILURE, REVOKED])
export const ALL_STATES: ReadonlySet<string> = new Set([PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED])

export const isReady = (state: string): boolean => READY_STATES.has(state)
export const isException = (state: string): boolean => EXCEPTION_STATES.has(state)
export const isPropagate = (state: string): boolean => PROPAGATE_STATES.has(state)

// `None` in Celery's list stands for every state not in it (custom states).
const PRECEDENCE: ReadonlyArray<string | null> = [
  SUCCESS,
  FAILURE,
  null,
  REVOKED,
  STARTED,
  RECEIVED,
  REJECTED,
  RETRY,
  PENDING
]
const CUSTOM_INDEX = PRECEDENCE.indexOf(null)

/** Celery's `states.precedence`: a lower index is a higher precedence. */
export const precedence = (state: string): number => {
  const i = PRECEDENCE.indexOf(state)
  return i === -1 ? CUSTOM_INDEX : i
}

/** `state(a) > state(b)` in Celery's sense. */
export const greaterThan = (a: string, b: string): boolean => precedence(a) < precedence(b)

/** An Order for sorting states from the highest precedence to the lowest. */
export const compare = (a: string, b: string): -1 | 0 | 1 => {
  const d = precedence(a) - precedence(b)
  return d < 0 ? -1 : d > 0 ? 1 : 0
}
