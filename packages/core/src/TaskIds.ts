/**
 * Task and group id validation, as Celery's `get_key_for_task` / `get_key_for_group` do it: an
 * empty id fails with `InvalidIdError` (Celery's message) in every operation, before the store is
 * touched; any other string is used as given (spaces, unicode, colons, `*`: Celery stores them
 * all). Every backend here applies `validateBackend` / `validateConsumer` to its services; a
 * backend of your own can too (the conformance suite checks the behaviour).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { InvalidIdError } from "./Errors.js"
import type { ResultBackend } from "./ResultBackend.js"
import type { ResultConsumer } from "./ResultConsumer.js"

/** Which id is checked, as Celery names it in its message. */
export type IdField = "task_id" | "group_id"

/**
 * The error for `id` when it is not usable (empty, or not a string when called from untyped
 * code), else undefined. The message is Celery's: `task_id must not be empty. Got  instead.`
 */
export const invalid = (field: IdField, id: unknown): InvalidIdError | undefined =>
  typeof id === "string" && id !== ""
    ? undefined
    : new InvalidIdError({
        field,
        // Python's f-string shows '' as nothing and None as `None`; other non-strings by their type.
        message: `${field} must not be empty. Got ${id === undefined || id === null ? "None" : typeof id === "string" ? id : typeof id} instead.`
      })

/** The first invalid id of `ids`, if any. */
const firstInvalid = (field: IdField, ids: ReadonlyArray<unknown>): InvalidIdError | undefined => {
  for (const id of ids) {
    const error = invalid(field, id)
    if (error !== undefined) return error
  }
  return undefined
}

/** `self` unless `id` is invalid. No Effect is added on the valid path. */
const checked = <A, E, R>(
  field: IdField,
  id: unknown,
  self: () => Effect.Effect<A, E, R>
): Effect.Effect<A, E | InvalidIdError, R> => {
  const error = invalid(field, id)
  return error === undefined ? self() : Effect.fail(error)
}

/**
 * The backend with every operation refusing an empty task id (`store`, `mark_as_*`, `get`,
 * `getMany`, `getAll`, `waitFor`, `forget`, `exists`) or group id (groups, chords; a chord part's
 * task id and body task id too). `getMany` / `getAll` take their ids once (an iterable is read a
 * single time) and refuse the whole call when any is empty.
 */
export const validateBackend = (backend: ResultBackend): ResultBackend => ({
  ...backend,
  store: (taskId, state, result, options) =>
    checked("task_id", taskId, () => backend.store(taskId, state, result, options)),
  markAsStarted: (taskId, info, options) =>
    checked("task_id", taskId, () => backend.markAsStarted(taskId, info, options)),
  markAsDone: (taskId, result, options) =>
    checked("task_id", taskId, () => backend.markAsDone(taskId, result, options)),
  markAsFailure: (taskId, exception, options) =>
    checked("task_id", taskId, () => backend.markAsFailure(taskId, exception, options)),
  markAsRetry: (taskId, exception, options) =>
    checked("task_id", taskId, () => backend.markAsRetry(taskId, exception, options)),
  markAsRevoked: (taskId, reason, options) =>
    checked("task_id", taskId, () => backend.markAsRevoked(taskId, reason, options)),
  get: (taskId) => checked("task_id", taskId, () => backend.get(taskId)),
  getMany: (taskIds, options) => {
    const ids = Array.from(taskIds)
    const error = firstInvalid("task_id", ids)
    return error === undefined ? backend.getMany(ids, options) : Stream.fail(error)
  },
  getAll: (taskIds, options) => {
    const ids = Array.from(taskIds)
    const error = firstInvalid("task_id", ids)
    return error === undefined ? backend.getAll(ids, options) : Effect.fail(error)
  },
  waitFor: (taskId, options) => checked("task_id", taskId, () => backend.waitFor(taskId, options)),
  forget: (taskId) => checked("task_id", taskId, () => backend.forget(taskId)),
  exists: (taskId) => checked("task_id", taskId, () => backend.exists(taskId)),
  saveGroup: (groupId, results) => checked("group_id", groupId, () => backend.saveGroup(groupId, results)),
  restoreGroup: (groupId) => checked("group_id", groupId, () => backend.restoreGroup(groupId)),
  deleteGroup: (groupId) => checked("group_id", groupId, () => backend.deleteGroup(groupId)),
  setChordSize: (groupId, size) => checked("group_id", groupId, () => backend.setChordSize(groupId, size)),
  addToChord: (groupId) => checked("group_id", groupId, () => backend.addToChord(groupId)),
  onChordPartReturn: (part, state, result) => {
    const error =
      invalid("group_id", part.groupId) ??
      invalid("task_id", part.taskId) ??
      (part.bodyTaskId === undefined ? undefined : invalid("task_id", part.bodyTaskId))
    return error === undefined ? backend.onChordPartReturn(part, state, result) : Effect.fail(error)
  }
})

/** The consumer with `watch` (and `waitReady`, kept when present) refusing an empty task id. */
export const validateConsumer = (consumer: ResultConsumer): ResultConsumer => {
  const waitReady = consumer.waitReady
  return {
    ...consumer,
    watch: (taskIds, options) => {
      const ids = Array.from(taskIds)
      const error = firstInvalid("task_id", ids)
      return error === undefined ? consumer.watch(ids, options) : Stream.fail(error)
    },
    ...(waitReady === undefined
      ? {}
      : {
          waitReady: (taskId, timeout, options) => checked("task_id", taskId, () => waitReady(taskId, timeout, options))
        })
  }
}
