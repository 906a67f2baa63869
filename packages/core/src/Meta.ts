/**
 * The Celery task meta and group meta: their TypeScript shape, and the codec that reads what every
 * Celery era writes and writes the exact bytes Celery 5.x writes (Python `json.dumps` formatting).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { DecodeError, RemoteException } from "./Errors.js"
import * as PyJson from "./PyJson.js"
import type { TaskRequest } from "./ResultBackend.js"
import type { TaskState } from "./TaskState.js"
import { EXCEPTION_STATES, READY_STATES } from "./TaskState.js"

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
// Codec API
// ---------------------------------------------------------------------------------------------

const HEAD_LENGTH = 100

const decodeError = (id: string, raw: string, message: string, cause?: unknown): DecodeError =>
  new DecodeError(
    cause === undefined
      ? { id, head: raw.slice(0, HEAD_LENGTH), message }
      : { id, head: raw.slice(0, HEAD_LENGTH), message, cause }
  )

/** What a missing key reads as: `{"status": "PENDING", "result": null}`. */
export const pending = (taskId: string): TaskMeta => ({
  taskId,
  status: "PENDING",
  result: null,
  traceback: null,
  children: null,
  dateDone: null
})

// Every store formats its time, and `Date#toISOString` was a tenth of a store's CPU: stores of the
// same second share the text.
let lastSecond = Number.NaN
let lastBase = ""
const isoSeconds = (seconds: number): string => {
  if (seconds !== lastSecond) {
    lastBase = new Date(seconds * 1000).toISOString().slice(0, 19)
    lastSecond = seconds
  }
  return lastBase
}

/**
 * `date_done` for a READY state written at `epochMillis` (µs = ms × 1000; no fraction when 0),
 * as Python's `datetime.isoformat()`. A fractional `epochMillis` keeps its microseconds. A
 * non-finite or out-of-range time (which no clock produces) is written as the epoch.
 */
export const formatDateDone = (epochMillis: number, style: DateStyle): string => {
  // The stores of one millisecond share the text (a batch's stores mostly are one millisecond).
  if (epochMillis === lastMillis && style === lastStyle) return lastDate
  lastDate = formatDate(epochMillis, style)
  lastMillis = epochMillis
  lastStyle = style
  return lastDate
}
let lastMillis = Number.NaN
let lastStyle: DateStyle | undefined
let lastDate = ""

const formatDate = (epochMillis: number, style: DateStyle): string => {
  // Python's datetime range is years 1..9999.
  const ms =
    Number.isFinite(epochMillis) && epochMillis >= -62135596800000 && epochMillis < 253402300800000 ? epochMillis : 0
  // Split before scaling: ms × 1000 is not exact beyond 2^53 (late years).
  const whole = Math.floor(ms)
  let seconds = Math.floor(whole / 1000)
  let frac = (whole - seconds * 1000) * 1000 + Math.round((ms - whole) * 1000)
  if (frac === 1e6) {
    seconds += 1
    frac = 0
  }
  const base = isoSeconds(seconds)
  const fraction = frac === 0 ? "" : "." + String(frac).padStart(6, "0")
  return style === "offset" ? base + fraction + "+00:00" : base + fraction
}

/** `AsyncResult.as_tuple()` / `GroupResult.as_tuple()`: `[[id, parent|null], children|null]`. */
export const refToTuple = (ref: ResultRef): ReadonlyArray<unknown> => [
  [ref.id, ref.parent === null ? null : refToTuple(ref.parent)],
  ref.children === null ? null : ref.children.map(refToTuple)
]

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
export const make = (input: MakeMetaInput): TaskMeta => {
  const request = input.request
  const meta: {
    -readonly [K in keyof TaskMeta]: TaskMeta[K]
  } = {
    taskId: input.taskId,
    status: input.state,
    // A RemoteException stays one; the encoder writes it as Celery's exception dict.
    result: input.result === undefined ? null : input.result,
    traceback: input.traceback ?? null,
    children: request === undefined ? null : (request.children ?? []).map(refToTuple),
    dateDone: READY_STATES.has(input.state) ? formatDateDone(input.now, input.dateStyle) : null
  }
  if (request !== undefined) {
    if (request.group) meta.groupId = request.group
    if (request.parentId) meta.parentId = request.parentId
    if (input.resultExtended === true) {
      meta.extended = {
        name: request.task ?? null,
        args: request.args ?? null,
        kwargs: request.kwargs ?? null,
        worker: request.hostname ?? null,
        // Celery's request context defaults `retries` to 0.
        retries: request.retries ?? 0,
        queue: request.routingKey ?? null
      }
    }
  }
  return meta
}

const EXTENDED_KEYS = ["name", "args", "kwargs", "worker", "retries", "queue"] as const

// The text before the result, per status, and the last date_done quoted: each store's meta is
// a chain of string pieces, and these are the same for most stores of a run.
const statusHeads = new Map<string, string>()
const statusHead = (status: string): string => {
  let head = statusHeads.get(status)
  if (head === undefined) {
    head = '{"status": ' + PyJson.encodeString(status) + ', "result": '
    if (statusHeads.size < 64) statusHeads.set(status, head)
  }
  return head
}
let lastDateDone = ""
let lastDateDoneJson = ""
const dateDoneJson = (dateDone: string): string => {
  if (dateDone !== lastDateDone) {
    lastDateDoneJson = PyJson.encodeString(dateDone)
    lastDateDone = dateDone
  }
  return lastDateDoneJson
}

const writeMeta = (meta: TaskMeta, enc: (v: unknown) => string): string => {
  const str = PyJson.encodeString
  let out =
    statusHead(meta.status) +
    enc(meta.result) +
    (meta.traceback === null ? ', "traceback": null' : ', "traceback": ' + str(meta.traceback)) +
    (meta.children === null ? ', "children": null' : ', "children": ' + enc(meta.children)) +
    (meta.dateDone === null ? ', "date_done": null' : ', "date_done": ' + dateDoneJson(meta.dateDone))
  if (meta.groupId !== undefined) out += ', "group_id": ' + str(meta.groupId)
  if (meta.parentId !== undefined) out += ', "parent_id": ' + str(meta.parentId)
  const ext = meta.extended
  if (ext !== undefined) {
    for (const k of EXTENDED_KEYS) out += ', "' + k + '": ' + enc(ext[k])
  }
  const extra = meta.extra
  if (extra !== undefined) {
    for (const k of Object.keys(extra)) {
      if (extra[k] !== undefined) out += ", " + str(k) + ": " + enc(extra[k])
    }
  }
  return out + ', "task_id": ' + str(meta.taskId) + "}"
}

/**
 * The exact bytes Celery writes for this meta (Python `json.dumps` formatting and field order).
 * Never throws: a value that cannot be encoded (function, cycle, …) is written as a string
 * stand-in, as Celery does for exception arguments. Use `encodeTaskMetaEither` to refuse instead.
 */
export const encodeTaskMeta = (meta: TaskMeta): string => writeMeta(meta, PyJson.encodeLossy)

const strictEncode = (v: unknown): string => PyJson.encode(v)

/** As `encodeTaskMeta`, but a value that cannot be encoded is an error (Celery's `EncodeError`). */
export const encodeTaskMetaEither = (meta: TaskMeta): Either.Either<string, PyJson.PyJsonError> => {
  try {
    return Either.right(writeMeta(meta, strictEncode))
  } catch (e) {
    return Either.left(
      e instanceof PyJson.PyJsonError ? e : new PyJson.PyJsonError({ message: `Cannot encode: ${String(e)}` })
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

type Plain = Record<string, unknown>

const isPlain = (v: unknown): v is Plain =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof PyJson.Typed)

const kind = (v: unknown): string =>
  v === null
    ? "null"
    : Array.isArray(v)
      ? "a list"
      : v instanceof PyJson.Typed
        ? `a ${v.type} envelope`
        : typeof v === "object"
          ? "an object"
          : typeof v === "bigint"
            ? "a number"
            : `a ${typeof v}`

// Python truthiness of a decoded JSON value.
const falsy = (v: unknown): boolean =>
  v === null ||
  v === undefined ||
  v === false ||
  v === 0 ||
  v === 0n ||
  v === "" ||
  (Array.isArray(v) && v.length === 0) ||
  (isPlain(v) && Object.keys(v).length === 0)

/** The module Celery gives a class it synthesizes when `exc_module` is missing. */
export const SYNTHESIZED_EXC_MODULE = "celery.backends.base"

/**
 * Celery's `exception_to_python` on a decoded result: a falsy value is `null`; a dict needs a string
 * `exc_type` (else Celery's `ValueError`); `exc_message` becomes the args array (a list as is, a
 * missing one as `[""]`, anything else as one argument). Left is the error message.
 */
export const exceptionFromResult = (v: unknown): Either.Either<RemoteException | null, string> => {
  if (falsy(v)) return Either.right(null)
  if (v instanceof RemoteException) return Either.right(v)
  if (!isPlain(v)) {
    return Either.left(
      `If the stored exception isn't an instance of BaseException, it must be a dictionary. Instead got ${kind(v)}`
    )
  }
  if (!("exc_type" in v)) return Either.left("Exception information must include the exception type")
  const excType = v["exc_type"]
  if (typeof excType !== "string") return Either.left(`exc_type must be a string, got ${kind(excType)}`)
  const excModule = v["exc_module"]
  if (excModule !== undefined && excModule !== null && typeof excModule !== "string") {
    return Either.left(`exc_module must be a string, got ${kind(excModule)}`)
  }
  const msg = "exc_message" in v ? v["exc_message"] : ""
  return Either.right(
    new RemoteException(
      {
        excType,
        excMessage: Array.isArray(msg) ? msg : [msg],
        excModule: typeof excModule === "string" ? excModule : SYNTHESIZED_EXC_MODULE
      },
      true
    )
  )
}

const reprOf = (v: unknown): string => PyJson.encodeLossy(v)

// Build a TaskMeta from a decoded object; `taskId` undefined means "use the stored task_id".
const putExtra = (extra: Plain | undefined, k: string, x: unknown): Plain => {
  const out = extra ?? {}
  if (k === "__proto__")
    Object.defineProperty(out, k, { value: x, writable: true, enumerable: true, configurable: true })
  else out[k] = x
  return out
}

const metaFail = (
  taskId: string | undefined,
  v: Plain,
  raw: string,
  message: string
): Either.Either<never, DecodeError> => Either.left(decodeError(taskId ?? stringOr(v["task_id"], ""), raw, message))

const extendedFieldOk = (k: string, x: unknown): boolean =>
  x === null ||
  (k === "args"
    ? Array.isArray(x)
    : k === "kwargs"
      ? isPlain(x)
      : k === "retries"
        ? typeof x === "number"
        : typeof x === "string")

// Build a TaskMeta from a decoded object; `taskId` undefined means "use the stored task_id".
// One pass over the keys and no closures: this is the hot path of every read.
const metaFromObject = (taskId: string | undefined, raw: string, v: unknown): Either.Either<TaskMeta, DecodeError> => {
  if (!isPlain(v))
    return Either.left(decodeError(taskId ?? "", raw, `A task meta must be a JSON object, got ${kind(v)}`))
  const status = v["status"]
  if (status === undefined) return metaFail(taskId, v, raw, "The task meta has no status")
  if (typeof status !== "string")
    return metaFail(taskId, v, raw, `The task meta status must be a string, got ${kind(status)}`)
  let result: unknown = null
  let traceback: string | null = null
  let children: ReadonlyArray<unknown> | null = null
  let dateDone: string | null = null
  let groupId: string | undefined
  let parentId: string | undefined
  let extended: { -readonly [K in keyof ExtendedFields]: ExtendedFields[K] } | undefined
  let extra: Plain | undefined
  let storedId: string | undefined
  for (const k in v) {
    const x = v[k]
    switch (k) {
      case "status":
        break
      case "result":
        result = x
        break
      case "traceback":
        if (x !== null && typeof x !== "string")
          return metaFail(taskId, v, raw, `traceback must be a string or null, got ${kind(x)}`)
        traceback = x
        break
      case "children":
        if (x !== null && !Array.isArray(x))
          return metaFail(taskId, v, raw, `children must be a list or null, got ${kind(x)}`)
        children = x
        break
      case "date_done":
        if (x === null || typeof x === "string") dateDone = x
        else if (x instanceof PyJson.Typed && x.type === "datetime" && typeof x.value === "string") dateDone = x.value
        else return metaFail(taskId, v, raw, `date_done must be an ISO-8601 string or null, got ${kind(x)}`)
        break
      case "group_id":
        if (typeof x === "string") groupId = x
        else extra = putExtra(extra, k, x)
        break
      case "parent_id":
        if (typeof x === "string") parentId = x
        else extra = putExtra(extra, k, x)
        break
      case "task_id":
        if (typeof x === "string") storedId = x
        break
      case "name":
      case "worker":
      case "queue":
      case "args":
      case "kwargs":
      case "retries":
        if (!extendedFieldOk(k, x))
          return metaFail(taskId, v, raw, `The extended field ${k} has an unexpected type: ${kind(x)}`)
        if (extended === undefined)
          extended = { name: null, args: null, kwargs: null, worker: null, retries: null, queue: null }
        ;(extended as Record<string, unknown>)[k] = x
        break
      default:
        extra = putExtra(extra, k, x)
    }
  }
  const finalId = taskId ?? storedId
  if (finalId === undefined) return metaFail(taskId, v, raw, "The task meta has no task_id")
  if (EXCEPTION_STATES.has(status)) {
    const exc = exceptionFromResult(result)
    if (Either.isLeft(exc)) return Either.left(decodeError(finalId, raw, exc.left))
    result = exc.right
  }
  const meta: { -readonly [K in keyof TaskMeta]: TaskMeta[K] } = {
    taskId: finalId,
    status,
    result,
    traceback,
    children,
    dateDone
  }
  if (groupId !== undefined) meta.groupId = groupId
  if (parentId !== undefined) meta.parentId = parentId
  if (extended !== undefined) meta.extended = extended
  if (extra !== undefined) meta.extra = extra
  return Either.right(meta)
}

const stringOr = (v: unknown, fallback: string): string => (typeof v === "string" ? v : fallback)

const decodeWith = (taskId: string | undefined, raw: string): Either.Either<TaskMeta, DecodeError> => {
  const parsed = PyJson.decode(raw)
  if (Either.isLeft(parsed)) {
    return Either.left(decodeError(taskId ?? "", raw, `Invalid JSON: ${parsed.left.message}`, parsed.left))
  }
  return metaFromObject(taskId, raw, parsed.right)
}

/**
 * Read a stored task meta of any Celery era; `taskId` names the key it came from. Exception states
 * get Celery's `exception_to_python` (see `exceptionFromResult`); unknown keys land in `extra`.
 */
export const decodeTaskMeta = (taskId: string, raw: string): Either.Either<TaskMeta, DecodeError> =>
  decodeWith(taskId, raw)

const TaskMetaType: Schema.Schema<TaskMeta> = Schema.declare(
  (u: unknown): u is TaskMeta =>
    isPlain(u) && typeof u["taskId"] === "string" && typeof u["status"] === "string" && "result" in u,
  { identifier: "TaskMeta" }
)

/**
 * The meta as a Schema over its stored JSON. Decoding names the meta by `taskId`, or by its stored
 * `task_id` when no `taskId` is given; encoding writes Celery's bytes and fails on unencodable values.
 */
export const taskMetaFromJson = (taskId?: string): Schema.Schema<TaskMeta, string> =>
  Schema.transformOrFail(Schema.String, TaskMetaType, {
    strict: true,
    decode: (raw, _, ast) => {
      const r = decodeWith(taskId, raw)
      return Either.isRight(r)
        ? ParseResult.succeed(r.right)
        : ParseResult.fail(new ParseResult.Type(ast, raw, r.left.message))
    },
    encode: (meta, _, ast) => {
      const r = encodeTaskMetaEither(meta)
      return Either.isRight(r)
        ? ParseResult.succeed(r.right)
        : ParseResult.fail(new ParseResult.Type(ast, meta, r.left.message))
    }
  })

/** `taskMetaFromJson()`: the task id comes from the stored `task_id`. */
export const TaskMetaFromJson: Schema.Schema<TaskMeta, string> = taskMetaFromJson()

/** Decode `meta.result` with a caller's Schema (e.g. the task's return type). */
export const decodeResult = <A, I, R>(
  meta: TaskMeta,
  schema: Schema.Schema<A, I, R>
): Effect.Effect<A, DecodeError, R> =>
  Effect.mapError(
    Schema.decodeUnknown(schema)(meta.result),
    (e) => new DecodeError({ id: meta.taskId, head: reprOf(meta.result).slice(0, HEAD_LENGTH), message: e.message })
  )

// ---------------------------------------------------------------------------------------------
// Groups and chords
// ---------------------------------------------------------------------------------------------

/** `{"result": <GroupResult tuple>}` as `save_group` writes it. */
export const encodeGroupMeta = (group: GroupMeta): string =>
  '{"result": [[' +
  PyJson.encodeString(group.groupId) +
  ", null], " +
  PyJson.encodeLossy(group.results.map(refToTuple)) +
  "]}"

class TupleError extends Error {}

/** Celery's `result_from_tuple`; throws `TupleError` (caught by the callers below). */
const refFromTupleUnsafe = (r: unknown): ResultRef => {
  if (!Array.isArray(r) || r.length !== 2) throw new TupleError(`A result tuple must be a 2-item list, got ${kind(r)}`)
  const [res, nodes] = r as [unknown, unknown]
  let id: unknown = res
  let parent: unknown = null
  if (Array.isArray(res)) {
    if (res.length !== 2) throw new TupleError(`A result id pair must be a 2-item list, got ${res.length} items`)
    id = res[0]
    parent = res[1]
  }
  if (typeof id !== "string") throw new TupleError(`A result id must be a string, got ${kind(id)}`)
  if (nodes !== null && !Array.isArray(nodes))
    throw new TupleError(`Group members must be a list or null, got ${kind(nodes)}`)
  return {
    id,
    parent: falsy(parent) ? null : refFromTupleUnsafe(parent),
    children: nodes === null ? null : (nodes as Array<unknown>).map(refFromTupleUnsafe)
  }
}

/** Read a result tuple (`as_tuple()` form) as a `ResultRef`. Left is the error message. */
export const refFromTuple = (r: unknown): Either.Either<ResultRef, string> => {
  try {
    return Either.right(refFromTupleUnsafe(r))
  } catch (e) {
    return Either.left(e instanceof TupleError ? e.message : "The result tuple is nested too deeply")
  }
}

export const decodeGroupMeta = (groupId: string, raw: string): Either.Either<GroupMeta, DecodeError> => {
  const parsed = PyJson.decode(raw)
  if (Either.isLeft(parsed))
    return Either.left(decodeError(groupId, raw, `Invalid JSON: ${parsed.left.message}`, parsed.left))
  const v = parsed.right
  if (!isPlain(v)) return Either.left(decodeError(groupId, raw, `A group meta must be a JSON object, got ${kind(v)}`))
  if (!("result" in v)) return Either.left(decodeError(groupId, raw, "The group meta has no result"))
  const ref = refFromTuple(v["result"])
  if (Either.isLeft(ref)) return Either.left(decodeError(groupId, raw, ref.left))
  if (ref.right.children === null)
    return Either.left(decodeError(groupId, raw, "The group meta result is not a GroupResult"))
  return Either.right({ groupId, results: ref.right.children })
}

/** A chord join member `[1, tid, state, result]` (result encoded as for a meta). */
export const encodeChordMember = (taskId: string, state: string, result: unknown): string =>
  "[1, " +
  PyJson.encodeString(taskId) +
  ", " +
  PyJson.encodeString(state) +
  ", " +
  PyJson.encodeLossy(result === undefined ? null : result) +
  "]"

export interface ChordMember {
  readonly taskId: string
  readonly state: string
  /** Decoded result; a `RemoteException` in an exception state when it has that shape. */
  readonly result: unknown
}

export const decodeChordMember = (groupId: string, raw: string): Either.Either<ChordMember, DecodeError> => {
  const parsed = PyJson.decode(raw)
  if (Either.isLeft(parsed))
    return Either.left(decodeError(groupId, raw, `Invalid JSON: ${parsed.left.message}`, parsed.left))
  const v = parsed.right
  if (!Array.isArray(v) || v.length !== 4) {
    return Either.left(decodeError(groupId, raw, `A chord member must be a 4-item list, got ${kind(v)}`))
  }
  const [, taskId, state, value] = v as [unknown, unknown, unknown, unknown]
  if (typeof taskId !== "string")
    return Either.left(decodeError(groupId, raw, `The chord member task id must be a string, got ${kind(taskId)}`))
  if (typeof state !== "string")
    return Either.left(decodeError(groupId, raw, `The chord member state must be a string, got ${kind(state)}`))
  let result = value
  if (EXCEPTION_STATES.has(state)) {
    const exc = exceptionFromResult(value)
    if (Either.isLeft(exc)) return Either.left(decodeError(groupId, raw, exc.left))
    result = exc.right
  }
  return Either.right({ taskId, state, result })
}
