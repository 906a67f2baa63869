/**
 * How node-redis failures become core's typed errors, in one place for the client, the backend, the
 * consumer and `@effect-celery/sentinel`, so every package draws the transient/permanent line the
 * same way (Celery's `connection_errors` vs `channel_errors`):
 *
 * - `connectionReason` / `replyReason`: the `ConnectionError.reason` a failure stands for, or
 *   undefined when it is a command failure. `NOPERM` (an ACL denial) is a command failure: retrying
 *   cannot fix it.
 * - `classify`: a command's failure as `ConnectionError` or `CommandError`; `connectError`: a
 *   failure while opening a connection (always a `ConnectionError`).
 * - `safeCause`: the cause as our errors keep it (driver errors can carry circular TLS data).
 */
export {
  classify,
  connectError,
  connectionReason,
  messageOf,
  mustDrop,
  replyReason,
  safeCause
} from "./internal/errors.js"
