/**
 * The Celery task meta and group meta: their TypeScript shape, and the codec that reads what every
 * Celery era writes and writes the exact bytes Celery 5.x writes (Python `json.dumps` formatting).
 */
import type { TaskState } from "./TaskState.js"
import * as Either from "effect/Either"
import { DecodeError } from "./Errors.js"
import type { TaskRequest } from "./ResultBackend.js"

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

// ---------------------------------------------------------------------------------------------
// Codec API (signatures fixed; bodies owned by the Meta work package).
// ---------------------------------------------------------------------------------------------

const notYet = (what: string): never => {
  throw new Error(`Meta.${what}: not implemented yet`)
}

/** What a missing key reads as: `{"status": "PENDING", "result": null}`. */
export const pending = (taskId: string): TaskMeta => ({
  taskId,
  status: "PENDING",
  result: null,
  traceback: null,
  children: null,
  dateDone: null
})

/** `date_done` for a READY state written at `epochMillis` (µs = ms × 1000; no fraction when 0). */
export const formatDateDone = (epochMillis: number, style: DateStyle): string => notYet(`formatDateDone(${epochMillis}, ${style})`)

export interface MakeMetaInput {
  readonly taskId: string
  readonly state: string
  readonly result: unknown
  readonly traceback?: string | null | undefined
  readonly request?: TaskRequest | undefined
  /** Write the extended fields (needs a request), as `result_extended=True`. */
  readonly resultExtended?: boolean | undefined
  /** The write time, used for `date_done` when the state is READY. */
  readonly now: number
  readonly dateStyle: DateStyle
}

/** Celery's `_get_result_meta` + `task_id`: the meta a store writes. */
export const make = (input: MakeMetaInput): TaskMeta => notYet(`make(${input.taskId})`)

/** The exact bytes Celery writes for this meta (Python `json.dumps` formatting and field order). */
export const encodeTaskMeta = (meta: TaskMeta): string => notYet(`encodeTaskMeta(${meta.taskId})`)

/** Read a stored task meta of any Celery era; `taskId` names the key it came from. */
export const decodeTaskMeta = (taskId: string, raw: string): Either.Either<TaskMeta, DecodeError> =>
  Either.left(new DecodeError({ id: taskId, head: raw.slice(0, 64), message: "not implemented yet" }))

/** `{"result": <GroupResult tuple>}` as `save_group` writes it. */
export const encodeGroupMeta = (group: GroupMeta): string => notYet(`encodeGroupMeta(${group.groupId})`)

export const decodeGroupMeta = (groupId: string, raw: string): Either.Either<GroupMeta, DecodeError> =>
  Either.left(new DecodeError({ id: groupId, head: raw.slice(0, 64), message: "not implemented yet" }))

/** A chord join member `[1, tid, state, result]` (result encoded as for a meta). */
export const encodeChordMember = (taskId: string, state: string, result: unknown): string =>
  notYet(`encodeChordMember(${taskId}, ${state}, ${String(result)})`)

export interface ChordMember {
  readonly taskId: string
  readonly state: string
  /** Decoded result; a `RemoteException` in an exception state when it has that shape. */
  readonly result: unknown
}

export const decodeChordMember = (groupId: string, raw: string): Either.Either<ChordMember, DecodeError> =>
  Either.left(new DecodeError({ id: groupId, head: raw.slice(0, 64), message: "not implemented yet" }))
