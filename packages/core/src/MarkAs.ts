/**
 * Celery's `mark_as_*` helpers, derived from a backend's `store`: the same for every backend, so
 * each implementation writes `store` once and spreads these into its service.
 */
import { RemoteException } from "./Errors.js"
import type { ResultBackend, RevokeReason } from "./ResultBackend.js"
import * as TaskState from "./TaskState.js"

export type MarkAs = Pick<
  ResultBackend,
  "markAsStarted" | "markAsDone" | "markAsFailure" | "markAsRetry" | "markAsRevoked"
>

/** The `mark_as_*` operations over `store`, with Celery's states, results and tracebacks. */
export const fromStore = (store: ResultBackend["store"]): MarkAs => ({
  // Without `info`, `{}`: what Celery's `mark_as_started(task_id)` stores with no meta.
  markAsStarted: (taskId, info, options) =>
    store(taskId, TaskState.STARTED, info === undefined ? {} : { pid: info.pid, hostname: info.hostname }, options),
  markAsDone: (taskId, result, options) => store(taskId, TaskState.SUCCESS, result, options),
  markAsFailure: (taskId, exception, options) => store(taskId, TaskState.FAILURE, exception, options),
  markAsRetry: (taskId, exception, options) => store(taskId, TaskState.RETRY, exception, options),
  // Celery stores a revocation with `traceback=None`, whatever the caller passes.
  markAsRevoked: (taskId, reason: RevokeReason = "revoked", options) =>
    store(
      taskId,
      TaskState.REVOKED,
      new RemoteException({ excType: "TaskRevokedError", excMessage: [reason], excModule: "celery.exceptions" }),
      { ...options, traceback: null }
    )
})
