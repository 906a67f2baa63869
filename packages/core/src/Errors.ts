/**
 * The failure modes of a Celery result backend, as tagged errors that can be serialized.
 * Every public operation fails with one of these; nothing is thrown.
 */
import * as Schema from "effect/Schema"

/** The configuration cannot work (bad URL, SSL options, missing master name, …). */
export class ImproperlyConfigured extends Schema.TaggedError<ImproperlyConfigured>(
  "@effect-celery/core/ImproperlyConfigured"
)("ImproperlyConfigured", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * Why a connection-level failure happened. The retry policy retries all of them but `Auth`, `Tls`
 * and `Shutdown`, which no wait can cure (see `isTransient`).
 */
export const ConnectionReason = Schema.Literal(
  "Connect", // could not open a connection (refused, DNS, reset during the handshake)
  "Closed", // the connection went away under a command
  "Timeout", // a socket timeout
  "Auth", // AUTH / ACL rejected: not retried (a wrong password stays wrong)
  "Tls", // the TLS handshake was rejected (untrusted CA, hostname mismatch, not a TLS port): not retried
  "MasterNotFound", // Sentinel: no usable master
  "ReadOnly", // talking to a replica (old master demoted)
  "Busy", // LOADING / BUSY / MASTERDOWN / TRYAGAIN / CLUSTERDOWN replies while the server is not ready
  "Shutdown" // the client or consumer was shut down (its scope closed): no retry can succeed, none is made
)
export type ConnectionReason = typeof ConnectionReason.Type

/** The connection to the store failed; retried under the retry policy when `isTransient`. */
export class ConnectionError extends Schema.TaggedError<ConnectionError>("@effect-celery/core/ConnectionError")(
  "ConnectionError",
  {
    reason: ConnectionReason,
    message: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {}

/**
 * A connection error a retry can cure: every `ConnectionError` but `Shutdown` (the client is
 * closed), `Auth` (rejected credentials) and `Tls` (a rejected handshake). Those fail at once, so a
 * misconfigured application learns it in milliseconds rather than after the whole retry budget.
 */
export const isTransient = (u: unknown): u is ConnectionError =>
  u instanceof ConnectionError && u.reason !== "Shutdown" && u.reason !== "Auth" && u.reason !== "Tls"

/** The server answered a command with an error (WRONGTYPE, syntax…): not retried. */
export class CommandError extends Schema.TaggedError<CommandError>("@effect-celery/core/CommandError")("CommandError", {
  command: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** Celery's `BackendStoreError`: the value cannot be stored (e.g. too large); nothing was written. */
export class BackendStoreError extends Schema.TaggedError<BackendStoreError>("@effect-celery/core/BackendStoreError")(
  "BackendStoreError",
  {
    message: Schema.String,
    state: Schema.String,
    taskId: Schema.String
  }
) {}

/** Stored bytes that are not a Celery meta (corrupt JSON, wrong shape, unknown envelope type). */
export class DecodeError extends Schema.TaggedError<DecodeError>("@effect-celery/core/DecodeError")("DecodeError", {
  /** The task (or group) id whose value failed to decode. */
  id: Schema.String,
  /** The first bytes of the raw value, for diagnosis. */
  head: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** How many task ids a `TimeoutError` keeps (and shows) at most; `taskCount` has the total. */
export const TIMEOUT_TASK_IDS_SHOWN = 10

/**
 * Celery's `TimeoutError`, with what was waited for. `celeryMessage` is Celery's exact text: "The
 * operation timed out." (`waitFor`, as `AsyncResult.get`) or "Operation timed out (<seconds>)"
 * (`getMany` / `getAll`, as `get_many`, the timeout as a Python float). `message` is that text
 * followed by the tasks not ready and the time waited, so a logged or printed error says what:
 *
 * ```text
 * The operation timed out. Task 5f0c… not ready after 3.002 s.
 * Operation timed out (1.0): 2 of 3 tasks not ready after 1.001 s: a, b.
 * Operation timed out (1.0): 990 of 1000 tasks not ready after 1.004 s: t0, t1, …, t9 and 980 more.
 * ```
 *
 * Make one with `timeoutError`.
 */
export class TimeoutError extends Schema.TaggedError<TimeoutError>("@effect-celery/core/TimeoutError")("TimeoutError", {
  /** Celery's message text, unchanged (what Celery's `TimeoutError` prints). */
  celeryMessage: Schema.String,
  /** The timeout in milliseconds. */
  timeoutMillis: Schema.Number,
  /** The tasks still not ready when it timed out: all of them, or the first `TIMEOUT_TASK_IDS_SHOWN`. */
  taskIds: Schema.Array(Schema.String),
  /** How many tasks were still not ready (`taskIds` may hold fewer). */
  taskCount: Schema.Number,
  /** How long the operation waited, in milliseconds, by the `Clock` it ran on. */
  elapsedMillis: Schema.Number
}) {
  override get message(): string {
    const waited = `after ${formatSeconds(this.elapsedMillis)} s`
    if (this.taskCount === 1 && this.taskIds.length === 1 && this.celeryMessage.endsWith(".")) {
      return `${this.celeryMessage} Task ${this.taskIds[0]} not ready ${waited}.`
    }
    const more = this.taskCount > this.taskIds.length ? ` and ${this.taskCount - this.taskIds.length} more` : ""
    const which = this.taskIds.length > 0 ? `: ${this.taskIds.join(", ")}${more}` : ""
    const tasks = `${this.taskCount} task${this.taskCount === 1 ? "" : "s"} not ready`
    return `${this.celeryMessage.replace(/\.$/, "")}: ${tasks} ${waited}${which}.`
  }
}

/** Milliseconds as seconds with up to three decimals: 3002 → "3.002", 1000 → "1". */
const formatSeconds = (millis: number): string => String(Math.round(millis) / 1000)

/**
 * A `TimeoutError` for `pending` (the tasks not ready yet, in asked order; only the first
 * `TIMEOUT_TASK_IDS_SHOWN` are kept), after `elapsedMillis` of a `timeoutMillis` wait.
 */
export const timeoutError = (options: {
  readonly celeryMessage: string
  readonly timeoutMillis: number
  readonly pending: Iterable<string>
  readonly elapsedMillis: number
}): TimeoutError => {
  const taskIds: Array<string> = []
  let taskCount = 0
  for (const id of options.pending) {
    if (taskCount < TIMEOUT_TASK_IDS_SHOWN) taskIds.push(id)
    taskCount++
  }
  return new TimeoutError({
    celeryMessage: options.celeryMessage,
    timeoutMillis: options.timeoutMillis,
    taskIds,
    taskCount,
    elapsedMillis: options.elapsedMillis
  })
}

/** Celery's `AsyncResult.get` timeout text. */
export const E_TIMED_OUT = "The operation timed out."

/** Celery's `ChordError`: a header part failed, or the join could not be done. */
export class ChordError extends Schema.TaggedError<ChordError>("@effect-celery/core/ChordError")("ChordError", {
  groupId: Schema.String,
  message: Schema.String
}) {}

/**
 * An empty task or group id, refused before anything is sent: Celery 5.6 raises
 * `ValueError('task_id must not be empty. Got  instead.')` (or `group_id`) from the same place,
 * `get_key_for_task` / `get_key_for_group`. An empty id would otherwise read and write the bare
 * prefix key (`celery-task-meta-`), shared by every such call.
 */
export class InvalidIdError extends Schema.TaggedError<InvalidIdError>("@effect-celery/core/InvalidIdError")(
  "InvalidIdError",
  {
    /** Which id: `task_id` or `group_id`, as Celery names it. */
    field: Schema.Literal("task_id", "group_id"),
    message: Schema.String
  }
) {}

/** The remote exception, as Celery stores it: `{"exc_type", "exc_message": [args…], "exc_module"}`. */
export class RemoteException extends Schema.Class<RemoteException>("@effect-celery/core/RemoteException")({
  /** `type(exc).__qualname__`, e.g. `"ValueError"` or `"Outer.Inner"`. */
  excType: Schema.String,
  /** The exception's args, always an array. */
  excMessage: Schema.Array(Schema.Unknown),
  /** `type(exc).__module__`, e.g. `"builtins"`. */
  excModule: Schema.String
}) {
  /** `module.Type` as Python would name the class. */
  get qualifiedName(): string {
    return this.excModule === "builtins" ? this.excType : `${this.excModule}.${this.excType}`
  }
}

/** A waited-for task ended in FAILURE or REVOKED: carries the remote exception. */
export class TaskFailedError extends Schema.TaggedError<TaskFailedError>("@effect-celery/core/TaskFailedError")(
  "TaskFailedError",
  {
    taskId: Schema.String,
    state: Schema.String,
    /** The remote exception, when the stored result has Celery's exception shape. */
    exception: Schema.optional(RemoteException),
    /** The raw stored result otherwise. */
    result: Schema.optional(Schema.Unknown),
    traceback: Schema.NullOr(Schema.String)
  }
) {
  override get message(): string {
    const exc = this.exception
    const what =
      exc === undefined
        ? String(this.result)
        : `${exc.qualifiedName}(${exc.excMessage.map((a) => JSON.stringify(a)).join(", ")})`
    return `Task ${this.taskId} ${this.state}: ${what}`
  }
}

/** The retry policy gave up: carries the last connection error. */
export class RetryLimitExceeded extends Schema.TaggedError<RetryLimitExceeded>(
  "@effect-celery/core/RetryLimitExceeded"
)("RetryLimitExceeded", {
  message: Schema.String,
  /** How many retries were made before giving up. */
  retries: Schema.Number,
  lastCause: ConnectionError
}) {}

/** What a backend operation that talks to the store can fail with. */
export type BackendError = ConnectionError | CommandError | RetryLimitExceeded

export const E_RETRY_LIMIT_EXCEEDED =
  "\nRetry limit exceeded while trying to reconnect to the Celery redis result store backend. The Celery application must be restarted.\n"
