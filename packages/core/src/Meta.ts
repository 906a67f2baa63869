/**
 * The Celery task meta and group meta: their TypeScript shape, and the codec that reads what every
 * Celery era writes and writes the exact bytes Celery 5.x writes (Python `json.dumps` formatting).
 *
 * STUB: the codec functions are implemented in this module by the Meta work package.
 */
import type { TaskState } from "./TaskState.js"

/** A reference to a result as Celery serializes it (`as_tuple`): `[[id, parent], children|null]`. */
export interface ResultRef {
  readonly id: string
  readonly parent: ResultRef | null
  /** Non-null for a GroupResult: its members. */
  readonly children: ReadonlyArray<ResultRef> | null
}

/** The `result_extended` fields. */
export interface ExtendedFields {
  readonly name: string | null
  readonly args: ReadonlyArray<unknown> | null
  readonly kwargs: Readonly<Record<string, unknown>> | null
  readonly worker: string | null
  readonly retries: number | null
  readonly queue: string | null
}

/**
 * A task meta. `result` holds the decoded JSON value (see `PyJson` for numbers); in an exception
 * state (RETRY, FAILURE, REVOKED) a result with Celery's exception shape is a `RemoteException`.
 */
export interface TaskMeta {
  readonly taskId: string
  readonly status: TaskState
  readonly result: unknown
  readonly traceback: string | null
  /** `[]` when written inside a task, `null` when written with no request. */
  readonly children: ReadonlyArray<unknown> | null
  /** The ISO-8601 string exactly as stored (naive or with offset); null unless ready. */
  readonly dateDone: string | null
  readonly groupId?: string | undefined
  readonly parentId?: string | undefined
  /** Present when the writer had `result_extended` on. */
  readonly extended?: ExtendedFields | undefined
  /** Any other keys (e.g. stamps), kept in order, written back before `task_id`. */
  readonly extra?: Readonly<Record<string, unknown>> | undefined
}

/** A group meta (`celery-taskset-meta-<gid>`): the saved GroupResult. */
export interface GroupMeta {
  readonly groupId: string
  readonly results: ReadonlyArray<ResultRef>
}

/** How `date_done` is written: Celery ≤ 5.3 writes naive UTC, ≥ 5.4 appends `+00:00`. */
export type DateStyle = "naive" | "offset"
