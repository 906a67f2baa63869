/**
 * The Celery result backend service: store, read, wait for, forget results; groups and chords.
 * Implemented in memory (`Memory.layer`) and over Redis (`@effect-celery/redis`).
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type {
  BackendError,
  BackendStoreError,
  ChordError,
  DecodeError,
  InvalidIdError,
  RemoteException,
  TaskFailedError,
  TimeoutError
} from "./Errors.js"
import type { GroupMeta, ResultRef, TaskMeta } from "./Meta.js"
import type { TaskState } from "./TaskState.js"

export const TypeId: unique symbol = Symbol.for("@effect-celery/core/ResultBackend")
export type TypeId = typeof TypeId

/** What the worker knows of the task being recorded (Celery's `request`). All optional. */
export interface TaskRequest {
  /** `request.group`: written as `group_id`. */
  readonly group?: string | undefined
  /** `request.group_index`: the position in a chord header. */
  readonly groupIndex?: number | undefined
  /** `request.parent_id`: written as `parent_id`. */
  readonly parentId?: string | undefined
  /** `request.task`: the task name (extended field `name`). */
  readonly task?: string | undefined
  readonly args?: ReadonlyArray<unknown> | undefined
  readonly kwargs?: Readonly<Record<string, unknown>> | undefined
  /** `request.hostname` (extended field `worker`). */
  readonly hostname?: string | undefined
  readonly retries?: number | undefined
  /** `delivery_info.routing_key` (extended field `queue`). */
  readonly routingKey?: string | null | undefined
  /** `request.children`: written as `children`. */
  readonly children?: ReadonlyArray<ResultRef> | undefined
}

export interface StoreOptions {
  readonly traceback?: string | null | undefined
  /**
   * The request. Without one, `children` is written as `null` and no group/parent/extended
   * fields are written, as Celery does for `backend.store_result()` outside a task.
   */
  readonly request?: TaskRequest | undefined
}

export interface GetManyOptions {
  /** Fail with `TimeoutError` when results are still missing after this long. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Celery's `get_many(interval=…)` poll interval, accepted for compatibility and ignored: the
   * backends here wait through Pub/Sub (or in memory) and never poll.
   */
  readonly interval?: Duration.DurationInput | undefined
}

export interface WaitOptions {
  /** Fail with `TimeoutError('The operation timed out.')` after this long. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The span of the task's publication (e.g. `Tracer.externalSpan` from the message's
   * `traceparent`): the wait's span (`celery.result.wait`) is linked to it.
   */
  readonly link?: Tracer.AnySpan | undefined
}

/** The identity of a chord header part being reported. */
export interface ChordPart {
  readonly groupId: string
  readonly taskId: string
  /** `group_index`; absent means `+inf` (sorted last). */
  readonly groupIndex?: number | undefined
  /**
   * The chord body's task id. When given and the chord fails (a part FAILED/REVOKED), a FAILURE
   * meta with Celery's `ChordError` is stored on it, as `chord_error_from_stack` does.
   */
  readonly bodyTaskId?: string | undefined
}

/** The outcome of reporting one chord part. */
export type ChordProgress =
  | { readonly _tag: "Pending"; readonly ready: number }
  /** This part completed the chord (reported exactly once): the header results in order. */
  | { readonly _tag: "Complete"; readonly results: ReadonlyArray<unknown> }

/** Revocation reasons Celery writes as the `TaskRevokedError` argument. */
export type RevokeReason = "revoked" | "terminated" | "expired"

/**
 * Every operation refuses an empty task id (or group id) with `InvalidIdError`, Celery's
 * `ValueError('task_id must not be empty. …')`, before touching the store; any other id is used
 * as given.
 */
export interface ResultBackend {
  readonly [TypeId]: TypeId

  /**
   * Store a meta: skipped when the stored state is SUCCESS (atomically with the write), then the
   * write and a PUBLISH on the task's channel. Fails with `BackendStoreError` when the encoded value
   * is too large; nothing is written then.
   */
  readonly store: (
    taskId: string,
    state: TaskState,
    result: unknown,
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  /** STARTED with `{"pid", "hostname"}` as `task_track_started` writes it. */
  readonly markAsStarted: (
    taskId: string,
    info?: { readonly pid: number; readonly hostname: string },
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  readonly markAsDone: (
    taskId: string,
    result: unknown,
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  readonly markAsFailure: (
    taskId: string,
    exception: RemoteException,
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  readonly markAsRetry: (
    taskId: string,
    exception: RemoteException,
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  readonly markAsRevoked: (
    taskId: string,
    reason?: RevokeReason,
    options?: StoreOptions
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>

  /**
   * The stored meta; a missing key reads as PENDING with a null result. A value that is not a
   * Celery meta (corrupt bytes, or a key holding a non-string such as a hash) fails with
   * `DecodeError` naming the task.
   */
  readonly get: (taskId: string) => Effect.Effect<TaskMeta, BackendError | DecodeError | InvalidIdError>
  /**
   * Each result as soon as it is ready (SUCCESS, FAILURE, REVOKED), in the order they become ready
   * (ids ready at the first read come in the order asked). A value that cannot be decoded (a key
   * holding a non-string too) is emitted as a `Left` and counts as resolved, so it never holds up
   * the others.
   */
  readonly getMany: (
    taskIds: Iterable<string>,
    options?: GetManyOptions
  ) => Stream.Stream<Either.Either<TaskMeta, DecodeError>, BackendError | TimeoutError | InvalidIdError>
  /**
   * Every result once all are ready, as one array in the order asked, an entry per id given (an id
   * given twice has two): `getMany` collected, as Celery's `ResultSet.join_native` gathers
   * `get_many`, though as metas, with nothing raised. A value that cannot be decoded is its entry's
   * `Left`. With `timeout`, fails with `TimeoutError` when some are still missing then (`getMany`
   * hands out the ones that were ready). Cheaper than collecting `getMany` when all you want is
   * the array: no Stream is run when every result is ready at the first read.
   */
  readonly getAll: (
    taskIds: Iterable<string>,
    options?: GetManyOptions
  ) => Effect.Effect<ReadonlyArray<Either.Either<TaskMeta, DecodeError>>, BackendError | TimeoutError | InvalidIdError>
  /**
   * Wait until the task is ready. SUCCESS → its meta; FAILURE/REVOKED → `TaskFailedError` with the
   * remote exception; a value that cannot be decoded (a key holding a non-string too) →
   * `DecodeError` naming the task, at once.
   */
  readonly waitFor: (
    taskId: string,
    options?: WaitOptions
  ) => Effect.Effect<TaskMeta, TaskFailedError | TimeoutError | BackendError | DecodeError | InvalidIdError>
  /** Delete the stored meta. */
  readonly forget: (taskId: string) => Effect.Effect<void, BackendError | InvalidIdError>
  /**
   * Whether a result is stored for the task (Celery 5.7's `AsyncResult.exists()`, the backend's
   * `task_result_exists`): `get` reads a missing key as PENDING, so this is what tells a task that
   * is waiting (or whose result expired or was forgotten) from one that reported PENDING-free
   * states. Any stored value counts, whatever its state, even one that cannot be decoded. Redis:
   * `EXISTS` on the task's meta key; not retried unless `alwaysRetry`, like every read.
   */
  readonly exists: (taskId: string) => Effect.Effect<boolean, BackendError | InvalidIdError>

  /** `GroupResult.save`: store the group's members. */
  readonly saveGroup: (
    groupId: string,
    results: ReadonlyArray<string | ResultRef>
  ) => Effect.Effect<void, BackendError | BackendStoreError | InvalidIdError>
  /** `GroupResult.restore`: none when missing. */
  readonly restoreGroup: (
    groupId: string
  ) => Effect.Effect<Option.Option<GroupMeta>, BackendError | DecodeError | InvalidIdError>
  readonly deleteGroup: (groupId: string) => Effect.Effect<void, BackendError | InvalidIdError>

  /** `set_chord_size`: the number of header parts (`.s`). */
  readonly setChordSize: (groupId: string, size: number) => Effect.Effect<void, BackendError | InvalidIdError>
  /** `add_to_chord`: one more part expected (`INCRBY .t 1`). */
  readonly addToChord: (groupId: string) => Effect.Effect<void, BackendError | InvalidIdError>
  /**
   * `on_chord_part_return`: record a header part's final state. The part that completes the chord
   * gets `Complete` with the header results in order (exactly once), and the chord keys are
   * deleted. When a part failed, the completing call fails with `ChordError`
   * (`Dependency <id> raised <repr>`), stored on `bodyTaskId` when given.
   */
  readonly onChordPartReturn: (
    part: ChordPart,
    state: TaskState,
    result: unknown
  ) => Effect.Effect<ChordProgress, BackendError | BackendStoreError | ChordError | DecodeError | InvalidIdError>
}

export const ResultBackend: Context.Tag<ResultBackend, ResultBackend> = Context.GenericTag<ResultBackend>(
  "@effect-celery/core/ResultBackend"
)

/** The task an item of `getMany` is about. */
export const itemTaskId = (item: Either.Either<TaskMeta, DecodeError>): string =>
  Either.isLeft(item) ? item.left.id : item.right.taskId

/**
 * `getAll` for a backend that has `getMany`: collect its stream, then put each item at the
 * places of its id in the asked order.
 */
export const getAllVia =
  (getMany: ResultBackend["getMany"]): ResultBackend["getAll"] =>
  (taskIds, options) =>
    Effect.suspend(() => {
      const asked = Array.from(taskIds)
      return Effect.map(Stream.runCollect(getMany(asked, options)), (items) => {
        const byId = new Map<string, Either.Either<TaskMeta, DecodeError>>()
        for (const item of items) byId.set(itemTaskId(item), item)
        // getMany ends only once every id has an item.
        return asked.map((id) => byId.get(id)!)
      })
    })
