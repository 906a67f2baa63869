/**
 * The in-memory Celery result backend: the same semantics as the Redis backend (keys, encoded bytes,
 * SUCCESS guard, TTLs, Pub/Sub, chords), with no server. For tests and single-process use.
 *
 * Time comes from the `Clock` the layer is built with, so under `it.effect` the TestClock drives
 * expiry and timeouts (`TestClock.adjust`).
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Clock } from "effect/Clock"
import * as BackendOptions from "./BackendOptions.js"
import type { BackendError, DecodeError, InvalidIdError, TimeoutError } from "./Errors.js"
import {
  BackendStoreError,
  ChordError,
  CommandError,
  E_TIMED_OUT,
  type ImproperlyConfigured,
  RemoteException,
  TaskFailedError,
  timeoutError
} from "./Errors.js"
import * as Keys from "./Keys.js"
import * as MarkAs from "./MarkAs.js"
import * as Meta from "./Meta.js"
import * as PyJson from "./PyJson.js"
import type { ChordPart, ChordProgress, ResultBackend as ResultBackendShape } from "./ResultBackend.js"
import { getAllVia, itemTaskId, ResultBackend, TypeId as ResultBackendTypeId } from "./ResultBackend.js"
import type { ResultConsumer as ResultConsumerShape, WatchOptions } from "./ResultConsumer.js"
import { ResultConsumer, TypeId as ResultConsumerTypeId } from "./ResultConsumer.js"
import * as TaskState from "./TaskState.js"
import * as Telemetry from "./Telemetry.js"
import * as TaskIds from "./TaskIds.js"

// ---------------------------------------------------------------------------------------------
// MemoryStore: raw access to the keyspace
// ---------------------------------------------------------------------------------------------

/**
 * Raw access to the in-memory keyspace, with Redis' semantics for the commands it mirrors. Values
 * are the encoded strings the backend wrote (the exact bytes Redis would hold).
 */
export interface MemoryStore {
  /** GET: a string value; fails with `WRONGTYPE` on a chord join set/list, as Redis does. */
  readonly get: (key: string) => Effect.Effect<Option.Option<string>, CommandError>
  /** SET (no TTL) or SETEX (`ttlSeconds` > 0). Does not publish. */
  readonly set: (key: string, value: string, ttlSeconds?: number) => Effect.Effect<void>
  /** DEL: whether the key existed. */
  readonly del: (key: string) => Effect.Effect<boolean>
  /** The remaining time to live in (fractional) seconds; none when the key is missing or persistent. */
  readonly ttl: (key: string) => Effect.Effect<Option.Option<number>>
  /** The live (unexpired) keys, in insertion order. */
  readonly keys: () => Effect.Effect<ReadonlyArray<string>>
  /** DBSIZE: how many keys are held, counting expired ones not reclaimed yet (as Redis does). */
  readonly dbsize: () => Effect.Effect<number>
  /** PUBLISH: how many listeners received the message. */
  readonly publish: (channel: string, message: string) => Effect.Effect<number>
  /** How many listeners are subscribed to a channel (for leak checks, like `PUBSUB NUMSUB`). */
  readonly subscriberCount: (channel: string) => Effect.Effect<number>
}

export const MemoryStore: Context.Tag<MemoryStore, MemoryStore> = Context.GenericTag<MemoryStore>(
  "@effect-celery/core/Memory/MemoryStore"
)

/** Everything one in-memory backend instance provides. */
export interface Memory {
  readonly backend: ResultBackendShape
  readonly consumer: ResultConsumerShape
  readonly store: MemoryStore
}

// ---------------------------------------------------------------------------------------------
// Keyspace internals
// ---------------------------------------------------------------------------------------------

type Value =
  | { readonly _tag: "string"; value: string }
  /** The ordered chord join set: member → score. */
  | { readonly _tag: "zset"; readonly members: Map<string, number> }
  /** The unordered chord join list. */
  | { readonly _tag: "list"; readonly items: Array<string> }

interface Entry {
  readonly value: Value
  /** Epoch millis on the layer's clock; undefined = persistent. */
  expiresAt: number | undefined
}

type Listener = (message: string) => void

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
const NOT_AN_INTEGER = "ERR value is not an integer or out of range"

const wrongType = (command: string): CommandError => new CommandError({ command, message: WRONGTYPE })

/** Redis' integer parsing for INCRBY and Celery's `int()` on `.s`/`.t`. */
const parseInteger = (raw: string): number | undefined => {
  const trimmed = raw.trim()
  return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : undefined
}

const unique = (ids: Iterable<string>): ReadonlyArray<string> => Array.from(new Set(ids))

/** A task meta that ends waiting: ready, or not decodable (so it never holds up the others). */
const decodeTerminal = (taskId: string, raw: string): Option.Option<Either.Either<Meta.TaskMeta, DecodeError>> => {
  const decoded = Meta.decodeTaskMeta(taskId, raw)
  return Either.isLeft(decoded) || TaskState.isReady(decoded.right.status) ? Option.some(decoded) : Option.none()
}

// Celery writes `status` first: a value that does not decode but starts as a SUCCESS meta is kept
// (the Redis backend's guard script does the same).
const SUCCESS_HEAD = /^\s*\{\s*"status"\s*:\s*"SUCCESS"/

/** The store guard: is the stored meta a SUCCESS? */
const storedSuccess = (taskId: string, raw: string): boolean => {
  const stored = Meta.decodeTaskMeta(taskId, raw)
  return Either.isRight(stored) ? stored.right.status === TaskState.SUCCESS : SUCCESS_HEAD.test(raw)
}

/** A timeout in seconds as Python prints a float (`1.0`, `0.25`), for Celery's get_many message. */
const pySeconds = (millis: number): string => PyJson.formatFloat(millis / 1000)

// ---------------------------------------------------------------------------------------------
// make / layer
// ---------------------------------------------------------------------------------------------

/**
 * Build one in-memory backend. All state lives in this closure: every `make` (and so every built
 * layer) is an independent keyspace. The clock is captured here, so expiry and timeouts run on the
 * clock of the fiber that built it. An out-of-range `expires` fails with `ImproperlyConfigured`
 * (see `BackendOptions.expiresSeconds`).
 */
export const make = (options: BackendOptions.BackendOptions = {}): Effect.Effect<Memory, ImproperlyConfigured> =>
  Effect.flatMap(BackendOptions.expiresSeconds(options), (ttlSeconds) =>
    Effect.map(Effect.clock, (clock) => makeWithClock(options, ttlSeconds, clock))
  )

const makeWithClock = (
  options: BackendOptions.BackendOptions,
  ttlSeconds: number | undefined,
  clock: Clock
): Memory => {
  const keys = Keys.make(options.keys ?? {})
  const dateStyle = options.dateStyle ?? "offset"
  const ordered = options.chordOrdered ?? true
  const resultExtended = options.resultExtended ?? false
  const maxValueSize = options.maxValueSize ?? BackendOptions.MAX_STR_VALUE_SIZE

  const data = new Map<string, Entry>()
  const channels = new Map<string, Set<Listener>>()
  const now = (): number => clock.unsafeCurrentTimeMillis()

  // Expired entries read as missing and are dropped on sight (Redis' lazy expiry).
  const lookup = (key: string): Entry | undefined => {
    const entry = data.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      data.delete(key)
      return undefined
    }
    return entry
  }

  const readString = (key: string, command = "GET"): Either.Either<string | undefined, CommandError> => {
    const entry = lookup(key)
    if (entry === undefined) return Either.right(undefined)
    return entry.value._tag === "string" ? Either.right(entry.value.value) : Either.left(wrongType(command))
  }

  const expiryFor = (seconds: number | undefined): number | undefined =>
    seconds !== undefined && seconds > 0 ? now() + seconds * 1000 : undefined

  // Active expiry, amortized: each write also checks a few entries, resuming where the last write
  // stopped, so keys that expire without ever being read again do not pile up.
  let sweeper: Iterator<[string, Entry]> = data.entries()
  const sweep = (budget: number): void => {
    const at = now()
    for (let i = 0; i < budget; i++) {
      let next = sweeper.next()
      if (next.done === true) {
        sweeper = data.entries()
        next = sweeper.next()
        if (next.done === true) return
      }
      const [key, entry] = next.value
      if (entry.expiresAt !== undefined && entry.expiresAt <= at) data.delete(key)
    }
  }

  const writeString = (key: string, value: string, seconds: number | undefined): void => {
    sweep(4)
    data.set(key, { value: { _tag: "string", value }, expiresAt: expiryFor(seconds) })
  }

  const expire = (key: string, seconds: number): void => {
    const entry = lookup(key)
    if (entry !== undefined) entry.expiresAt = expiryFor(seconds)
  }

  const remove = (key: string): boolean => lookup(key) !== undefined && data.delete(key)

  // Pub/Sub: publish calls every listener synchronously, so a store and its publish are one step.
  const publish = (channel: string, message: string): number => {
    const listeners = channels.get(channel)
    if (listeners === undefined) return 0
    for (const listener of Array.from(listeners)) listener(message)
    return listeners.size
  }

  /** Add a listener; the returned function removes it (idempotent). */
  const subscribe = (channel: string, listener: Listener): (() => void) => {
    let listeners = channels.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      channels.set(channel, listeners)
    }
    listeners.add(listener)
    let active = true
    return () => {
      if (!active) return
      active = false
      const current = channels.get(channel)
      if (current === undefined) return
      current.delete(listener)
      if (current.size === 0) channels.delete(channel)
    }
  }

  /** Celery's `set()`: the size check, then SET/SETEX and PUBLISH of the same bytes. */
  const setAndPublish = (
    key: string,
    value: string,
    state: string,
    id: string
  ): Either.Either<void, BackendStoreError> => {
    if (value.length > maxValueSize) {
      return Either.left(new BackendStoreError({ message: "value too large for Redis backend", state, taskId: id }))
    }
    writeString(key, value, ttlSeconds)
    publish(key, value)
    return Either.right(undefined)
  }

  // ---- store ---------------------------------------------------------------------------------

  const store: ResultBackendShape["store"] = (taskId, state, result, storeOptions = {}) =>
    Effect.suspend((): Effect.Effect<void, BackendError | BackendStoreError> => {
      // The codec never throws: an unencodable value is written as a string stand-in, as Celery does.
      const encoded = Meta.encodeTaskMeta(
        Meta.make({
          taskId,
          state,
          result,
          traceback: storeOptions.traceback,
          request: storeOptions.request,
          resultExtended,
          now: now(),
          dateStyle
        })
      )
      // The guard read, the write and the publish happen in this one synchronous step: no other
      // fiber can write in between (what Redis needs a Lua script or WATCH for).
      const key = keys.task(taskId)
      const current = readString(key)
      if (Either.isLeft(current)) return Effect.fail(current.left)
      if (current.right !== undefined && storedSuccess(taskId, current.right)) return Effect.void
      return setAndPublish(key, encoded, state, taskId)
    })

  const markAs = MarkAs.fromStore(store)

  // ---- read ----------------------------------------------------------------------------------

  const get: ResultBackendShape["get"] = (taskId) =>
    Effect.suspend((): Effect.Effect<Meta.TaskMeta, BackendError | DecodeError> => {
      const raw = readString(keys.task(taskId))
      if (Either.isLeft(raw)) return Effect.fail(raw.left)
      if (raw.right === undefined) return Effect.succeed(Meta.pending(taskId))
      return Meta.decodeTaskMeta(taskId, raw.right)
    })

  /**
   * The state changes of `ids` as a stream: subscribe to every task channel and read the current
   * values in one synchronous step (so no write can fall between the two), then follow the
   * published values. `getMany` mode keeps only ready metas and counts an undecodable value as
   * finished; `watch` mode emits every change and follows a task until a ready state.
   *
   * Buffering: publish is synchronous and cannot wait, so each stream has its own unbounded queue.
   * It holds at most the writes made while the consumer is slow; the queue and the listeners go
   * away with the stream's scope.
   */
  const follow = (
    taskIds: Iterable<string>,
    mode: { readonly follow: boolean; readonly getMany: boolean }
  ): Stream.Stream<Either.Either<Meta.TaskMeta, DecodeError>, BackendError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const ids = unique(taskIds)
        if (ids.length === 0) return Stream.empty
        const queue = yield* Effect.acquireRelease(Queue.unbounded<readonly [string, string]>(), Queue.shutdown)
        const subscriptions = new Map<string, () => void>()
        yield* Effect.addFinalizer(() => Effect.sync(() => subscriptions.forEach((unsubscribe) => unsubscribe())))
        yield* Effect.suspend(() => {
          for (const id of ids) {
            subscriptions.set(
              id,
              subscribe(keys.task(id), (raw) => queue.unsafeOffer([id, raw]))
            )
          }
          for (const id of ids) {
            const raw = readString(keys.task(id))
            if (Either.isLeft(raw)) return Effect.fail(raw.left)
            if (raw.right !== undefined) queue.unsafeOffer([id, raw.right])
          }
          return Effect.void
        })
        const last = new Map<string, string>()
        let open = ids.length
        const events = Stream.fromQueue(queue).pipe(
          Stream.filterMap(([id, raw]) => {
            const unsubscribe = subscriptions.get(id)
            if (unsubscribe === undefined || last.get(id) === raw) return Option.none()
            last.set(id, raw)
            const decoded = Meta.decodeTaskMeta(id, raw)
            const terminal = Either.isLeft(decoded) ? mode.getMany : TaskState.isReady(decoded.right.status)
            if (terminal && !mode.follow) {
              unsubscribe()
              subscriptions.delete(id)
              open -= 1
            }
            if (mode.getMany && !terminal) return Option.none()
            // `done` is decided per element here: a later takeUntil on shared state would cut a chunk short.
            return Option.some({ decoded, done: !mode.follow && open === 0 })
          })
        )
        return (mode.follow ? events : events.pipe(Stream.takeUntil((event) => event.done))).pipe(
          Stream.map((event) => event.decoded)
        )
      })
    )

  const getMany: ResultBackendShape["getMany"] = (taskIds, getOptions = {}) => {
    const timeout = getOptions.timeout
    if (timeout === undefined) return follow(taskIds, { follow: false, getMany: true })
    const millis = Duration.toMillis(Duration.decode(timeout))
    // Per run: the tasks not delivered yet, for the TimeoutError.
    return Stream.suspend(() => {
      const pending = new Set(unique(taskIds))
      const start = now()
      return follow(pending, { follow: false, getMany: true }).pipe(
        Stream.tap((item) => Effect.sync(() => pending.delete(itemTaskId(item)))),
        Stream.interruptWhen(
          Effect.flatMap(clock.sleep(Duration.millis(millis)), () =>
            Effect.fail(
              timeoutError({
                celeryMessage: `Operation timed out (${pySeconds(millis)})`,
                timeoutMillis: millis,
                pending,
                elapsedMillis: now() - start
              })
            )
          )
        )
      )
    })
  }

  const waitFor: ResultBackendShape["waitFor"] = (taskId, waitOptions = {}) =>
    Effect.scoped(
      Effect.gen(function* () {
        const key = keys.task(taskId)
        const ready = yield* Deferred.make<Either.Either<Meta.TaskMeta, DecodeError>>()
        const settle = (raw: string): void => {
          const terminal = decodeTerminal(taskId, raw)
          if (Option.isSome(terminal)) Deferred.unsafeDone(ready, Effect.succeed(terminal.value))
        }
        // Subscribe, then read: a write between the two is seen by the listener.
        yield* Effect.acquireRelease(
          Effect.sync(() => subscribe(key, settle)),
          (unsubscribe) => Effect.sync(unsubscribe)
        )
        const current = readString(key)
        if (Either.isLeft(current)) return yield* current.left
        if (current.right !== undefined) settle(current.right)

        const awaited =
          waitOptions.timeout === undefined
            ? Deferred.await(ready)
            : timeoutOn(Deferred.await(ready), taskId, Duration.toMillis(Duration.decode(waitOptions.timeout)))
        const meta = yield* Effect.flatten(awaited)
        if (meta.status === TaskState.SUCCESS) return meta
        return yield* new TaskFailedError({
          taskId,
          state: meta.status,
          traceback: meta.traceback,
          ...(meta.result instanceof RemoteException ? { exception: meta.result } : { result: meta.result })
        })
      })
    )

  const timeoutOn = <A, E>(
    self: Effect.Effect<A, E>,
    taskId: string,
    millis: number
  ): Effect.Effect<A, E | TimeoutError> =>
    Effect.suspend(() => {
      const start = now()
      return Effect.raceFirst(
        self,
        Effect.flatMap(clock.sleep(Duration.millis(millis)), () =>
          Effect.fail(
            timeoutError({
              celeryMessage: E_TIMED_OUT,
              timeoutMillis: millis,
              pending: [taskId],
              elapsedMillis: now() - start
            })
          )
        )
      )
    })

  const forget: ResultBackendShape["forget"] = (taskId) => Effect.sync(() => void remove(keys.task(taskId)))

  const exists: ResultBackendShape["exists"] = (taskId) => Effect.sync(() => lookup(keys.task(taskId)) !== undefined)

  // ---- groups --------------------------------------------------------------------------------

  const saveGroup: ResultBackendShape["saveGroup"] = (groupId, results) =>
    Effect.suspend(() => {
      const refs = results.map((r): Meta.ResultRef =>
        typeof r === "string" ? { id: r, parent: null, children: null } : r
      )
      return setAndPublish(
        keys.group(groupId),
        Meta.encodeGroupMeta({ groupId, results: refs }),
        TaskState.SUCCESS,
        groupId
      )
    })

  const restoreGroup: ResultBackendShape["restoreGroup"] = (groupId) =>
    Effect.suspend((): Effect.Effect<Option.Option<Meta.GroupMeta>, BackendError | DecodeError> => {
      const raw = readString(keys.group(groupId))
      if (Either.isLeft(raw)) return Effect.fail(raw.left)
      if (raw.right === undefined) return Effect.succeed(Option.none())
      return Either.map(Meta.decodeGroupMeta(groupId, raw.right), Option.some)
    })

  const deleteGroup: ResultBackendShape["deleteGroup"] = (groupId) =>
    Effect.sync(() => void remove(keys.group(groupId)))

  // ---- chords --------------------------------------------------------------------------------

  const setChordSize: ResultBackendShape["setChordSize"] = (groupId, size) =>
    Effect.sync(() => {
      // A plain integer string, as redis-py writes an int; published like every `set()`.
      const key = keys.chordSize(groupId)
      const value = String(Math.trunc(size))
      writeString(key, value, ttlSeconds)
      publish(key, value)
    })

  const addToChord: ResultBackendShape["addToChord"] = (groupId) =>
    Effect.suspend(() => {
      const key = keys.chordCounter(groupId)
      const raw = readString(key, "INCRBY")
      if (Either.isLeft(raw)) return Effect.fail(raw.left)
      const current = raw.right === undefined ? 0 : parseInteger(raw.right)
      if (current === undefined) return Effect.fail(new CommandError({ command: "INCRBY", message: NOT_AN_INTEGER }))
      const entry = lookup(key)
      // INCRBY keeps the key's TTL.
      data.set(key, { value: { _tag: "string", value: String(current + 1) }, expiresAt: entry?.expiresAt })
      return Effect.void
    })

  /** The chord failed: store Celery's ChordError on the body (when known), then fail the caller. */
  const chordFailed = (
    part: ChordPart,
    message: string
  ): Effect.Effect<never, ChordError | BackendStoreError | BackendError | InvalidIdError> =>
    Effect.zipRight(
      part.bodyTaskId === undefined
        ? Effect.void
        : store(
            part.bodyTaskId,
            TaskState.FAILURE,
            new RemoteException({ excType: "ChordError", excMessage: [message], excModule: "celery.exceptions" })
          ),
      Effect.fail(new ChordError({ groupId: part.groupId, message }))
    )

  /** Add this part's member and count, in one synchronous step (Celery's MULTI … EXEC). */
  const recordPart = (
    part: ChordPart,
    member: string
  ): Either.Either<{ readonly added: boolean; readonly count: number }, CommandError> => {
    const joinKey = keys.chordJoin(part.groupId)
    const entry = lookup(joinKey)
    if (ordered) {
      if (entry !== undefined && entry.value._tag !== "zset") return Either.left(wrongType("ZADD"))
      const members = entry?.value._tag === "zset" ? entry.value.members : new Map<string, number>()
      if (entry === undefined) data.set(joinKey, { value: { _tag: "zset", members }, expiresAt: undefined })
      // A ZSET: an identical member (a re-delivered part) is not added again.
      const added = !members.has(member)
      members.set(member, part.groupIndex ?? Number.POSITIVE_INFINITY)
      return Either.right({ added, count: members.size })
    }
    if (entry !== undefined && entry.value._tag !== "list") return Either.left(wrongType("RPUSH"))
    const items = entry?.value._tag === "list" ? entry.value.items : []
    if (entry === undefined) data.set(joinKey, { value: { _tag: "list", items }, expiresAt: undefined })
    // A LIST: duplicates count twice, as in Celery.
    items.push(member)
    return Either.right({ added: true, count: items.length })
  }

  /** The join members in result order: by score then member bytes (ZRANGE), or append order. */
  const joinMembers = (groupId: string, total: number): ReadonlyArray<string> => {
    const entry = lookup(keys.chordJoin(groupId))
    if (entry === undefined) return []
    if (entry.value._tag === "zset") {
      return Array.from(entry.value.members)
        .sort(([a, sa], [b, sb]) => (sa !== sb ? sa - sb : a < b ? -1 : a > b ? 1 : 0))
        .map(([member]) => member)
    }
    // Celery reads `LRANGE .j 0 total` (inclusive).
    return entry.value._tag === "list" ? entry.value.items.slice(0, total + 1) : []
  }

  const onChordPartReturn: ResultBackendShape["onChordPartReturn"] = (part, state, result) =>
    Effect.suspend(
      (): Effect.Effect<
        ChordProgress,
        BackendError | BackendStoreError | ChordError | DecodeError | InvalidIdError
      > => {
        const { groupId, taskId } = part
        if (groupId === "" || taskId === "") return Effect.succeed({ _tag: "Pending", ready: 0 })
        const recorded = recordPart(part, Meta.encodeChordMember(taskId, state, result))
        if (Either.isLeft(recorded)) return Effect.fail(recorded.left)
        const { added, count } = recorded.right
        const counterKey = keys.chordCounter(groupId)
        const sizeKey = keys.chordSize(groupId)
        const extraRaw = readString(counterKey)
        const sizeRaw = readString(sizeKey)
        if (Either.isLeft(extraRaw)) return Effect.fail(extraRaw.left)
        if (Either.isLeft(sizeRaw)) return Effect.fail(sizeRaw.left)
        if (ttlSeconds !== undefined) {
          for (const key of [keys.chordJoin(groupId), counterKey, sizeKey]) expire(key, ttlSeconds)
        }
        // No size yet: an early part (Celery sets `.s` just before sending the last header task).
        if (sizeRaw.right === undefined) return Effect.succeed({ _tag: "Pending", ready: count })
        const size = parseInteger(sizeRaw.right)
        const extra = extraRaw.right === undefined ? 0 : parseInteger(extraRaw.right)
        if (size === undefined || extra === undefined) {
          return Effect.fail(
            new CommandError({ command: "GET", message: `chord size of ${groupId} is not an integer` })
          )
        }
        // Only the call that added the member making the count reach the total completes the chord,
        // so a re-delivered identical last part cannot fire the body twice.
        if (!(added && count === size + extra)) return Effect.succeed({ _tag: "Pending", ready: count })

        const results: Array<unknown> = []
        for (const raw of joinMembers(groupId, size + extra)) {
          const decoded = Meta.decodeChordMember(groupId, raw)
          if (Either.isLeft(decoded)) {
            return Effect.zipRight(
              Effect.ignore(chordFailed(part, `Join error: ${decoded.left.message}`)),
              Effect.fail(decoded.left)
            )
          }
          const m = decoded.right
          if (TaskState.isPropagate(m.state))
            return chordFailed(part, `Dependency ${m.taskId} raised ${PyJson.repr(m.result)}`)
          results.push(m.result)
        }
        // Cleanup only on the success path, as Celery (a failed chord's keys expire).
        for (const key of [keys.chordJoin(groupId), counterKey, sizeKey]) remove(key)
        return Effect.succeed({ _tag: "Complete", results })
      }
    )

  // ---- consumer ------------------------------------------------------------------------------

  const watch: ResultConsumerShape["watch"] = (taskIds, watchOptions: WatchOptions = {}) =>
    follow(taskIds, { follow: watchOptions.follow ?? false, getMany: false })

  // ---- raw store -----------------------------------------------------------------------------

  const memoryStore: MemoryStore = {
    get: (key) =>
      Effect.suspend(() => {
        const raw = readString(key)
        return Either.isLeft(raw) ? Effect.fail(raw.left) : Effect.succeed(Option.fromNullable(raw.right))
      }),
    set: (key, value, seconds) => Effect.sync(() => writeString(key, value, seconds)),
    del: (key) => Effect.sync(() => remove(key)),
    ttl: (key) =>
      Effect.sync(() => {
        const entry = lookup(key)
        return entry?.expiresAt === undefined ? Option.none() : Option.some((entry.expiresAt - now()) / 1000)
      }),
    keys: () => Effect.sync(() => Array.from(data.keys()).filter((key) => lookup(key) !== undefined)),
    dbsize: () => Effect.sync(() => data.size),
    publish: (channel, message) => Effect.sync(() => publish(channel, message)),
    subscriberCount: (channel) => Effect.sync(() => channels.get(channel)?.size ?? 0)
  }

  const backend: ResultBackendShape = {
    [ResultBackendTypeId]: ResultBackendTypeId,
    store,
    ...markAs,
    get,
    getMany,
    getAll: getAllVia(getMany),
    waitFor,
    forget,
    exists,
    saveGroup,
    restoreGroup,
    deleteGroup,
    setChordSize,
    addToChord,
    onChordPartReturn
  }
  const consumer: ResultConsumerShape = { [ResultConsumerTypeId]: ResultConsumerTypeId, watch }
  return { backend, consumer, store: memoryStore }
}

const target: Telemetry.Target = { system: "memory" }

/**
 * The in-memory backend as a layer: `ResultBackend`, `ResultConsumer` (instrumented as
 * `options.tracing` / `options.metrics` say, with `db.system.name` = `memory`) and its `MemoryStore`.
 */
export const layer = (
  options: BackendOptions.BackendOptions = {}
): Layer.Layer<ResultBackend | ResultConsumer | MemoryStore, ImproperlyConfigured> =>
  Layer.effectContext(
    Effect.map(make(options), (memory) =>
      Context.make(
        ResultBackend,
        Telemetry.instrumentBackend(TaskIds.validateBackend(memory.backend), target, options)
      ).pipe(
        Context.add(
          ResultConsumer,
          Telemetry.instrumentConsumer(TaskIds.validateConsumer(memory.consumer), target, options)
        ),
        Context.add(MemoryStore, memory.store)
      )
    )
  )
