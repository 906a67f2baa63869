/**
 * Celery's Redis result backend (`celery.backends.redis.RedisBackend`) as core's `ResultBackend`.
 *
 * Same keys, same bytes, same channels as Celery, so Python workers and clients can share the
 * Redis with it. Where it departs from Celery it is on the side of correctness and speed:
 * - a store is ONE atomic round trip (a Lua script doing the SUCCESS guard, SETEX/SET and PUBLISH)
 *   instead of Celery's racy GET then MULTI, and the stores of one tick share it;
 * - a chord part is one atomic script that also decides completion exactly once and returns the
 *   members, so no second round trip can race another worker;
 * - `getMany` and `waitFor` wait on Pub/Sub (through `ResultConsumer.watch`), never poll and never
 *   sleep after the last result.
 *
 * Measured choices (node-redis 4.7, loopback, 2 vCPUs): no tracing spans on the operations (an
 * `Effect.withSpan` per call cost ~20 µs of CPU, up to 3× a `get`; wrap calls in your own spans
 * where you want them); concurrent `get`s coalesced into MGETs by `RedisClient.get`; retry policies
 * set up only after a first failure (see `replayFirst`).
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as BackendOptions from "@effect-celery/core/BackendOptions"
import {
  BackendStoreError,
  ChordError,
  CommandError,
  type ConnectionError,
  type DecodeError,
  type ImproperlyConfigured,
  isTransient,
  RemoteException,
  type RetryLimitExceeded,
  TaskFailedError,
  type TimeoutError,
  E_TIMED_OUT,
  timeoutError
} from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import * as MarkAs from "@effect-celery/core/MarkAs"
import * as Meta from "@effect-celery/core/Meta"
import * as PyJson from "@effect-celery/core/PyJson"
import {
  type ChordPart,
  type ChordProgress,
  type GetManyOptions,
  itemTaskId,
  ResultBackend,
  TypeId,
  type WaitOptions
} from "@effect-celery/core/ResultBackend"
import { ResultConsumer, type WaitReadyOptions } from "@effect-celery/core/ResultConsumer"
import * as RetryPolicy from "@effect-celery/core/RetryPolicy"
import * as TaskState from "@effect-celery/core/TaskState"
import * as Telemetry from "@effect-celery/core/Telemetry"
import * as TaskIds from "@effect-celery/core/TaskIds"
import * as Batcher from "./internal/batcher.js"
import * as Scripts from "./internal/scripts.js"
import * as WrongType from "./internal/wrongType.js"
import { type Commands, RedisClient } from "./RedisClient.js"

/**
 * Most stores in one script call. Small enough that 100 callers make several batches the server
 * works on while the client prepares the next (see `RedisClient.batched`), and bounds how long
 * other clients wait behind one atomic batch (about 10 µs of server time per store).
 */
const STORE_BATCH = 32

/** The store script's replies, one per key: 1 written, 0 skipped, or an error reply. */
const storeReplies = (reply: unknown): ReadonlyArray<number | Error> => {
  if (!Array.isArray(reply)) throw new Error(`unexpected store script reply: ${String(reply)}`)
  return reply.map((r: unknown) =>
    typeof r === "number" || r instanceof Error ? r : new Error(`unexpected store script reply: ${String(r)}`)
  )
}

/** A store's outcome: one value for every caller (whether the guard skipped it is not reported). */
const storeDone = Either.right(undefined)
const written = (): Either.Either<void> => storeDone

const firstReply = (replies: ReadonlyArray<number | Error>): number => {
  const r = replies[0]
  if (r === undefined) throw new Error("empty store script reply")
  if (r instanceof Error) throw r
  return r
}

/**
 * `self`, whose first attempt already failed with `first`: replays that failure, then runs `self`.
 * Retry policies are engaged only after a first failure through this, because setting up a
 * retrying Schedule on every call was measured to halve store throughput (about 10 µs of CPU per
 * call) for nothing on the happy path. The replayed failure counts exactly as the policy would
 * have counted it; only a policy `timeout` then starts at that failure rather than before the
 * first attempt (later by the first attempt's duration).
 */
const replayFirst = <A, E, R, E1 extends E>(first: E1, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let replayed = false
  return Effect.suspend(() => {
    if (replayed) return self
    replayed = true
    return Effect.fail(first)
  })
}

const annotations = { package: "@effect-celery/redis", module: "RedisResultBackend" } as const

/** A `get` whose key read as missing (nil): pending, unless the key holds a non-string. */
const MISSING = Symbol("missing")

/** Where `getAll` keeps the ids still missing, for its `TimeoutError`. */
interface PendingTrack {
  pending: () => Iterable<string>
}

/** How `waitFor` starts a consumer's `waitReady`. */
const readFirst: WaitReadyOptions = { readFirst: true }

/** `Operation timed out (<timeout>)` shows the timeout in seconds as a Python float. */
const secondsText = (millis: number): string => PyJson.formatFloat(millis / 1000)

/** The Celery `ChordError` stored on a chord body, as `chord_error_from_stack` writes it. */
const chordErrorException = (message: string): RemoteException =>
  new RemoteException({ excType: "ChordError", excMessage: [message], excModule: "celery.exceptions" })

type ChordReply =
  | { readonly _tag: "Pending"; readonly count: number }
  | { readonly _tag: "Complete"; readonly members: ReadonlyArray<string> }
  | { readonly _tag: "Invalid"; readonly size: string; readonly extra: string }

const parseChordReply = (reply: unknown): ChordReply | undefined => {
  if (!Array.isArray(reply)) return undefined
  const [count, flag, a, b] = reply as ReadonlyArray<unknown>
  if (typeof count !== "number") return undefined
  if (flag === 0) return { _tag: "Pending", count }
  if (flag === 1 && Array.isArray(a) && a.every((m) => typeof m === "string")) {
    return { _tag: "Complete", members: a }
  }
  if (flag === -1 && typeof a === "string" && typeof b === "string") return { _tag: "Invalid", size: a, extra: b }
  return undefined
}

/**
 * Build the backend. Requires the Redis connection (`RedisClient`) and the Pub/Sub consumer
 * (`ResultConsumer`) that `getMany` and `waitFor` wait through. It holds no resource of its own.
 * An out-of-range `expires` fails with `ImproperlyConfigured` (see `BackendOptions.expiresSeconds`).
 */
export const make = (
  options: BackendOptions.BackendOptions = {}
): Effect.Effect<ResultBackend, ImproperlyConfigured, RedisClient | ResultConsumer> =>
  Effect.gen(function* () {
    const client = yield* RedisClient
    const consumer = yield* ResultConsumer
    const keys = Keys.make(options.keys ?? {})
    // An out-of-range `result_expires` fails here, when the layer is built, rather than at every store.
    const ttl = String((yield* BackendOptions.expiresSeconds(options)) ?? 0)
    const maxValueSize = options.maxValueSize ?? BackendOptions.MAX_STR_VALUE_SIZE
    const dateStyle = options.dateStyle ?? "offset"
    const ordered = options.chordOrdered ?? true

    // Writes go through Celery's `ensure` (kombu retry_over_time) on connection errors only.
    const kombuRetry = RetryPolicy.retry(RetryPolicy.merge(options.retryPolicy))
    const retryWrite = <A, E, R>(
      self: Effect.Effect<A, E | ConnectionError, R>
    ): Effect.Effect<A, E | ConnectionError | RetryLimitExceeded, R> =>
      Effect.catchIf(self, isTransient, (first) => kombuRetry(replayFirst(first, self)))

    // `result_backend_always_retry`: the whole operation (and reads) also retried with jitter, on
    // connection errors and on an inner policy that gave up (Celery ≥ 5.5 layering).
    const alwaysPolicy = RetryPolicy.resolveAlwaysRetry(options.alwaysRetry)
    const always = alwaysPolicy === undefined ? undefined : RetryPolicy.alwaysRetry(alwaysPolicy)
    const retryAlways = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | RetryLimitExceeded, R> =>
      always === undefined
        ? self
        : Effect.catchAll(self, (first): Effect.Effect<A, E | RetryLimitExceeded, R> =>
            RetryPolicy.isAlwaysRetryable(first) ? always(replayFirst(first, self)) : Effect.fail(first)
          )

    // ---- raw commands -------------------------------------------------------------------------

    /**
     * SETEX/SET + PUBLISH in one script; `guard` skips it when a SUCCESS is stored. The writes of
     * one tick share a script call (node-redis' per-command CPU was most of a store's).
     */
    const storeScript = (guard: boolean) => {
      const flags = [ttl, guard ? "1" : "0"]
      const many = (c: Commands, items: Array<readonly [string, string]>) => {
        const keyList: Array<string> = []
        const args = flags.slice()
        for (const [key, value] of items) {
          keyList.push(key)
          args.push(value)
        }
        return c.runScript(Scripts.store, keyList, args).then(storeReplies)
      }
      return client.batched<readonly [string, string], number, void, RetryLimitExceeded>({
        command: "EVALSHA",
        maxBatch: STORE_BATCH,
        many,
        one: (c, item) => many(c, [item]).then(firstReply),
        outcome: written,
        // `retryWrite`, engaged only for a caller whose write did not succeed: the others pass no
        // `catchIf` (the retry sends the same bytes again, through this batching).
        recover: (attempt, item, again) =>
          Effect.catchIf(attempt, isTransient, (first) => kombuRetry(replayFirst(first, again(item))))
      })
    }
    const guardedStore = storeScript(true)
    const plainStore = storeScript(false)
    const guardedStoreIn = Batcher.submitIn(guardedStore)
    const setValue = (key: string, value: string, guard: boolean) => (guard ? guardedStore : plainStore)([key, value])

    const del = (key: string) => client.del([key]).pipe(Effect.asVoid)

    // ---- task metas ---------------------------------------------------------------------------

    const decodeTask = (taskId: string, raw: string | null): Either.Either<Meta.TaskMeta, DecodeError> =>
      raw === null ? Either.right(Meta.pending(taskId)) : Meta.decodeTaskMeta(taskId, raw)

    // Plain code under one `withFiberRuntime` rather than `Effect.gen` (the generator steps were
    // measured at about a tenth of a store's CPU): the caller's Clock (date_done) and its fiber,
    // which the batching needs, from the one node.
    const store: ResultBackend["store"] = (taskId, state, result, storeOptions) =>
      Effect.withFiberRuntime(
        (
          fiber,
          status
        ): Effect.Effect<void, BackendStoreError | CommandError | ConnectionError | RetryLimitExceeded> => {
          let value: string
          try {
            value = Meta.encodeTaskMeta(
              Meta.make({
                taskId,
                state,
                result,
                traceback: storeOptions?.traceback,
                request: storeOptions?.request,
                resultExtended: options.resultExtended,
                now: Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis(),
                dateStyle
              })
            )
          } catch (cause) {
            return Effect.fail(
              new BackendStoreError({ message: `cannot encode the result: ${String(cause)}`, state, taskId })
            )
          }
          // Celery's size check happens before any I/O: nothing is written.
          if (value.length > maxValueSize) {
            return Effect.fail(new BackendStoreError({ message: "value too large for Redis backend", state, taskId }))
          }
          return guardedStoreIn(fiber, status.runtimeFlags, [keys.task(taskId), value])
        }
      ).pipe(retryAlways)

    // Celery's GET, through the client's coalescing: the gets of one tick share one MGET, and each
    // caller resumes with its meta or its DecodeError, decoded where the batch is handed out.
    // A key that reads as missing may hold a non-string (MGET's nil, a lone GET's WRONGTYPE):
    // checked, and then a DecodeError naming the task (`WrongType`).
    const taskIdAt = keys.taskKeyprefix.length
    const getTask = client.getWith((raw, key): Either.Either<Meta.TaskMeta | typeof MISSING, DecodeError> =>
      raw === null ? Either.right(MISSING) : decodeTask(key.slice(taskIdAt), raw)
    )
    const typeOf = WrongType.typeOfBatched(client)
    const missing = (
      taskId: string,
      key: string
    ): Effect.Effect<Meta.TaskMeta, DecodeError | ConnectionError | CommandError> =>
      Effect.flatMap(typeOf(key), (type) =>
        type === "" ? Effect.succeed(Meta.pending(taskId)) : Effect.fail(WrongType.wrongType(taskId, key, type))
      )
    const get: ResultBackend["get"] = (taskId) => {
      const key = keys.task(taskId)
      return retryAlways(
        getTask(key).pipe(
          Effect.flatMap((meta) => (meta === MISSING ? missing(taskId, key) : Effect.succeed(meta))),
          Effect.catchIf(
            (error): error is CommandError => error._tag === "CommandError" && WrongType.isWrongTypeReply(error),
            () => missing(taskId, key)
          )
        )
      )
    }

    /**
     * One read of `ids` (MGET in chunks), decoded in order. The keys that read as missing are
     * checked in one more call: one holding a non-string is that task's `DecodeError`.
     */
    const readDecoded = (ids: ReadonlyArray<string>) =>
      retryAlways(
        Effect.flatMap(client.mget(ids.map(keys.task)), (raws) => {
          const decoded: Array<Either.Either<Meta.TaskMeta, DecodeError>> = []
          let absent: Array<number> | undefined
          for (let i = 0; i < ids.length; i++) {
            const raw = raws[i] ?? null
            if (raw === null) (absent ??= []).push(i)
            decoded.push(decodeTask(ids[i]!, raw))
          }
          if (absent === undefined) return Effect.succeed(decoded)
          const at = absent
          return Effect.map(
            WrongType.typesOf(
              client,
              at.map((i) => keys.task(ids[i]!))
            ),
            (types) => {
              for (let j = 0; j < at.length; j++) {
                const type = types[j]
                if (type !== undefined && type !== "") {
                  const id = ids[at[j]!]!
                  decoded[at[j]!] = Either.left(WrongType.wrongType(id, keys.task(id), type))
                }
              }
              return decoded
            }
          )
        })
      )

    /** Done for `getMany`: ready, or undecodable (which never holds up the others). */
    const isSettled = (item: Either.Either<Meta.TaskMeta, DecodeError>): boolean =>
      Either.isLeft(item) || TaskState.isReady(item.right.status)

    /**
     * Each of `remaining` (not settled at the read) once, when it settles. The consumer subscribes
     * before it reads, so a result stored after the first read is not missed.
     */
    const settleLater = (remaining: Array<string>) => {
      const waiting = new Set(remaining)
      // Detached: the channels are released without waiting for the server's acknowledgement, so a
      // `getAll` / `getMany` timeout is never held by a frozen server.
      return consumer.watch(remaining, { detach: true }).pipe(
        Stream.filter((item) => {
          const id = itemTaskId(item)
          if (!waiting.has(id) || !isSettled(item)) return false
          waiting.delete(id)
          return true
        }),
        // Each id passes the filter once: the stream is done after that many.
        Stream.take(remaining.length)
      )
    }

    /**
     * Celery's get_many timeout for one run, started now on the caller's clock: `pending()` is
     * what is still missing when it fires.
     */
    const manyTimeout = (timeout: Duration.DurationInput, clock: Clock.Clock, pending: () => Iterable<string>) => {
      const duration = Duration.decode(timeout)
      const millis = Duration.toMillis(duration)
      const start = clock.unsafeCurrentTimeMillis()
      return {
        duration,
        onTimeout: () =>
          timeoutError({
            celeryMessage: `Operation timed out (${secondsText(millis)})`,
            timeoutMillis: millis,
            pending: pending(),
            elapsedMillis: clock.unsafeCurrentTimeMillis() - start
          })
      }
    }

    /**
     * Celery's `get_many` without its polling: one MGET, then Pub/Sub for the rest, so there is
     * nothing to sleep between reads and nothing after the last result. `interval` is accepted for
     * Celery compatibility and ignored.
     */
    const getMany: ResultBackend["getMany"] = (taskIds, getOptions?: GetManyOptions) => {
      const timeout = getOptions?.timeout
      if (timeout === undefined) return manyStream(taskIds)
      // Per run: the ids not delivered yet (every item getMany emits is settled), for the error.
      return Stream.unwrap(
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const pending = new Set(taskIds)
            const { duration, onTimeout } = manyTimeout(timeout, clock, () => pending)
            return manyStream(pending).pipe(
              Stream.mapChunks((chunk) => {
                for (const item of chunk) pending.delete(itemTaskId(item))
                return chunk
              }),
              Stream.interruptWhen(
                Effect.zipRight(
                  Effect.sleep(duration),
                  Effect.suspend(() => Effect.fail(onTimeout()))
                )
              )
            )
          })
        )
      )
    }

    const manyStream = (taskIds: Iterable<string>) => {
      // A channel that writes the ready ones as one chunk: `Stream.unwrap` and per-element emits
      // were measured to cost more than decoding the thousand values.
      const stream = Stream.fromChannel(
        Channel.unwrap(
          Effect.suspend(() => {
            // Each id once, in asked order (a Set built in one call: half the cost of has/add per id).
            const ids = Array.from(new Set(taskIds))
            if (ids.length === 0) return Effect.succeed(Channel.void)
            return Effect.map(readDecoded(ids), (decoded) => {
              // All settled (a finished group): the decoded array is the chunk, not a copy of it.
              let first = decoded
              let remaining: Array<string> | undefined
              for (let i = 0; i < ids.length; i++) {
                if (isSettled(decoded[i]!)) {
                  if (remaining !== undefined) first.push(decoded[i]!)
                } else if (remaining === undefined) {
                  first = decoded.slice(0, i)
                  remaining = [ids[i]!]
                } else remaining.push(ids[i]!)
              }
              // The empty chunk after the ready ones overwrites the executor's last emitted value: a
              // dead channel executor in V8's old generation still pointing at the thousand decoded
              // metas would keep them alive through scavenges.
              const ready =
                first.length === 0
                  ? Channel.void
                  : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(first)), Channel.write(Chunk.empty()))
              if (remaining === undefined) return ready
              return Channel.zipRight(ready, Stream.toChannel(settleLater(remaining)))
            })
          })
        )
      )
      return stream
    }

    /**
     * `getMany` as one array in the asked order. When every result is ready at the first read
     * (the common case for a finished group) no Stream is run: a Stream run costs about 500
     * runtime operations and 200 kB of garbage whatever it carries (1,000 ready results read
     * 1.3–1.4× faster than by draining `getMany`). The first read takes the ids as asked, a
     * repeated id read twice: deduplicating them first costs more than the rare repeat.
     */
    const getAll: ResultBackend["getAll"] = (taskIds, getOptions?: GetManyOptions) => {
      const timeout = getOptions?.timeout
      if (timeout === undefined) return readAll(taskIds, undefined)
      return Effect.clockWith((clock) =>
        Effect.suspend(() => {
          // What is still missing, for the TimeoutError: every id until the first read is back.
          const asked = Array.from(taskIds)
          const track: PendingTrack = { pending: () => new Set(asked) }
          return Effect.timeoutFail(
            readAll(asked, track),
            manyTimeout(timeout, clock, () => track.pending())
          )
        })
      )
    }

    /** `getAll`'s read; `track.pending` is kept to the ids still missing. */
    const readAll = (taskIds: Iterable<string>, track: PendingTrack | undefined) =>
      Effect.suspend(() => {
        const asked = Array.from(taskIds)
        if (asked.length === 0) return Effect.succeed([])
        return Effect.flatMap(readDecoded(asked), (decoded) => {
          // id → its places in `asked`, for the ones still to come (a repeated id has several).
          let places: Map<string, number | Array<number>> | undefined
          for (let i = 0; i < asked.length; i++) {
            if (isSettled(decoded[i]!)) continue
            places ??= new Map()
            const id = asked[i]!
            const at = places.get(id)
            if (at === undefined) places.set(id, i)
            else if (typeof at === "number") places.set(id, [at, i])
            else at.push(i)
          }
          if (places === undefined) return Effect.succeed(decoded)
          const waiting = places
          if (track !== undefined) track.pending = () => waiting.keys()
          return settleLater(Array.from(waiting.keys())).pipe(
            Stream.runForEach((item) =>
              Effect.sync(() => {
                const id = itemTaskId(item)
                const at = waiting.get(id)!
                if (typeof at === "number") decoded[at] = item
                else for (const i of at) decoded[i] = item
                if (track !== undefined) waiting.delete(id)
              })
            ),
            Effect.as(decoded)
          )
        })
      })

    const settle = (meta: Meta.TaskMeta): Effect.Effect<Meta.TaskMeta, TaskFailedError> => {
      if (meta.status === TaskState.SUCCESS) return Effect.succeed(meta)
      const exception = meta.result instanceof RemoteException ? meta.result : undefined
      return Effect.fail(
        new TaskFailedError({
          taskId: meta.taskId,
          state: meta.status,
          ...(exception === undefined ? { result: meta.result } : { exception }),
          traceback: meta.traceback
        })
      )
    }

    const waitFor: ResultBackend["waitFor"] = (taskId, waitOptions?: WaitOptions) =>
      waitOptions?.timeout === undefined
        ? waitForUntil(taskId, undefined, undefined)
        : Effect.clockWith((clock) => {
            const timeout = Duration.decode(waitOptions.timeout!)
            const start = clock.unsafeCurrentTimeMillis()
            return waitForUntil(taskId, timeout, () =>
              timeoutError({
                celeryMessage: E_TIMED_OUT,
                timeoutMillis: Duration.toMillis(timeout),
                pending: [taskId],
                elapsedMillis: clock.unsafeCurrentTimeMillis() - start
              })
            )
          })

    const waitForUntil = (
      taskId: string,
      timeout: Duration.Duration | undefined,
      onTimeout: (() => TimeoutError) | undefined
    ): ReturnType<ResultBackend["waitFor"]> => {
      const settleItem = (
        item: Either.Either<Meta.TaskMeta, DecodeError>
      ): Effect.Effect<Meta.TaskMeta, TaskFailedError | DecodeError> =>
        Either.isLeft(item) ? Effect.fail(item.left) : settle(item.right)
      // A consumer with `waitReady` (this package's) resumes the waiter from the message itself and
      // does not hold it for the UNSUBSCRIBE acknowledgement; any other consumer goes through its
      // `watch` stream. Either way: subscribe → read → wait.
      const waitReady = consumer.waitReady
      if (waitReady !== undefined) {
        // A task already finished is answered by one GET (coalesced with the tick's other reads)
        // instead of the wait's SUBSCRIBE, MGET and PING (three round trips, then an UNSUBSCRIBE);
        // see bench/RESULTS.md. A task not ready yet, or a read that fails, goes on to the wait,
        // which reads again once subscribed, so nothing stored in between is missed.
        if (timeout === undefined || onTimeout === undefined) {
          // Unbounded: the read on the caller's fiber (~2 kB less than `readFirst`'s waiter).
          const wait = Effect.suspend(() => Effect.flatMap(waitReady(taskId), settleItem))
          return Effect.matchEffect(client.get(keys.task(taskId)), {
            onFailure: () => wait,
            onSuccess: (raw) => {
              if (raw === null) return wait
              const item = decodeTask(taskId, raw)
              return isSettled(item) ? settleItem(item) : wait
            }
          })
        }
        // Bounded: the consumer reads first (`readFirst`), the read and the wait under one of its
        // deadlines; racing the read against the timeout (`Effect.timeoutFail`: two fibers and a
        // timer) was measured at 53 kB and ~25 µs a call against 15 kB.
        return Effect.flatMap(waitReady(taskId, { duration: timeout, onTimeout }, readFirst), settleItem)
      }
      const once = consumer.watch([taskId]).pipe(
        Stream.filter((item) => Either.isLeft(item) || TaskState.isReady(item.right.status)),
        Stream.runHead
      )
      const loop: Effect.Effect<Meta.TaskMeta, TaskFailedError | DecodeError | Effect.Effect.Error<typeof once>> =
        Effect.flatMap(once, (head) =>
          Option.match(head, {
            onNone: () => Effect.suspend(() => loop),
            onSome: settleItem
          })
        )
      if (timeout === undefined || onTimeout === undefined) return loop
      return loop.pipe(Effect.timeoutFail({ duration: timeout, onTimeout }))
    }

    const forget: ResultBackend["forget"] = (taskId) => retryAlways(del(keys.task(taskId)))

    const exists: ResultBackend["exists"] = (taskId) =>
      client.command(["EXISTS", keys.task(taskId)]).pipe(
        retryAlways,
        Effect.map((reply) => typeof reply === "number" && reply > 0)
      )

    // ---- groups -------------------------------------------------------------------------------

    const saveGroup: ResultBackend["saveGroup"] = (groupId, results) =>
      Effect.gen(function* () {
        const refs = results.map((r): Meta.ResultRef =>
          typeof r === "string" ? { id: r, parent: null, children: null } : r
        )
        const value = yield* Effect.try({
          try: () => Meta.encodeGroupMeta({ groupId, results: refs }),
          catch: (cause) =>
            new BackendStoreError({
              message: `cannot encode the group: ${String(cause)}`,
              state: TaskState.SUCCESS,
              taskId: groupId
            })
        })
        if (value.length > maxValueSize) {
          return yield* new BackendStoreError({
            message: "value too large for Redis backend",
            state: TaskState.SUCCESS,
            taskId: groupId
          })
        }
        yield* setValue(keys.group(groupId), value, false)
      }).pipe(retryAlways)

    // A plain GET, not the coalesced `client.get`: MGET would read a key holding a non-string as
    // missing where Celery's GET fails with WRONGTYPE.
    const restoreGroup: ResultBackend["restoreGroup"] = (groupId) =>
      client.command(["GET", keys.group(groupId)]).pipe(
        retryAlways,
        Effect.flatMap((raw) =>
          typeof raw === "string" ? Either.map(Meta.decodeGroupMeta(groupId, raw), Option.some) : Effect.succeedNone
        )
      )

    const deleteGroup: ResultBackend["deleteGroup"] = (groupId) => retryAlways(del(keys.group(groupId)))

    // ---- chords -------------------------------------------------------------------------------

    const setChordSize: ResultBackend["setChordSize"] = (groupId, size) =>
      retryAlways(setValue(keys.chordSize(groupId), String(size), false))

    // Celery sends INCRBY unretried: a retry after a lost reply could count the part twice.
    const addToChord: ResultBackend["addToChord"] = (groupId) =>
      client.incrBy(keys.chordCounter(groupId), 1).pipe(Effect.asVoid)

    /** The chord failed: record it on the body (as `chord_error_from_stack`) and fail. */
    const chordFailed = (part: ChordPart, message: string) =>
      Effect.gen(function* () {
        // Celery logs 'Chord %r raised: %r' at ERROR.
        yield* Effect.logError(
          `Chord ${PyJson.repr(part.groupId)} raised: ${PyJson.repr(chordErrorException(message))}`
        ).pipe(Effect.annotateLogs(annotations))
        if (part.bodyTaskId !== undefined) {
          yield* store(part.bodyTaskId, TaskState.FAILURE, chordErrorException(message))
        }
        return yield* new ChordError({ groupId: part.groupId, message })
      })

    const complete = (part: ChordPart, rawMembers: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const members: Array<Meta.ChordMember> = []
        for (const raw of rawMembers) members.push(yield* Meta.decodeChordMember(part.groupId, raw))
        const failed = members.find((m) => TaskState.isPropagate(m.state))
        if (failed !== undefined) {
          // Celery leaves `.j/.t/.s` to expire on this path.
          return yield* chordFailed(part, `Dependency ${failed.taskId} raised ${PyJson.repr(failed.result)}`)
        }
        const { chordCounter, chordJoin, chordSize } = keys
        yield* client.del([chordJoin(part.groupId), chordCounter(part.groupId), chordSize(part.groupId)]).pipe(
          retryWrite,
          // The chord is complete whatever happens to the cleanup (the keys still expire).
          Effect.catchAll((error) =>
            Effect.logWarning(`Chord ${part.groupId}: could not delete its keys`, error).pipe(
              Effect.annotateLogs(annotations)
            )
          )
        )
        return { _tag: "Complete", results: members.map((m) => m.result) } satisfies ChordProgress
      })

    const onChordPartReturn: ResultBackend["onChordPartReturn"] = (part, state, result) =>
      Effect.gen(function* () {
        const member = yield* Effect.try({
          try: () => Meta.encodeChordMember(part.taskId, state, result),
          catch: (cause) =>
            new BackendStoreError({ message: `cannot encode the result: ${String(cause)}`, state, taskId: part.taskId })
        })
        const score = ordered ? (part.groupIndex === undefined ? "+inf" : String(part.groupIndex)) : ""
        const chordKeys = [keys.chordJoin(part.groupId), keys.chordCounter(part.groupId), keys.chordSize(part.groupId)]
        // Not retried, as Celery: after a lost reply a retried ZADD would find its member present and
        // never complete the chord.
        const reply = yield* client.runScript(Scripts.chordPart, chordKeys, [member, score, ttl])
        const parsed = parseChordReply(reply)
        if (parsed === undefined) {
          return yield* new CommandError({
            command: "EVALSHA",
            message: `unexpected chord script reply: ${String(reply)}`
          })
        }
        switch (parsed._tag) {
          case "Pending":
            return { _tag: "Pending", ready: parsed.count } satisfies ChordProgress
          case "Invalid": {
            // Python's int() on the stored bytes raised: Celery reports it as a join error.
            const bad = /^\s*[+-]?\d+\s*$/.test(parsed.size) ? parsed.extra : parsed.size
            const valueError = new RemoteException({
              excType: "ValueError",
              excMessage: [`invalid literal for int() with base 10: b${PyJson.repr(bad)}`],
              excModule: "builtins"
            })
            return yield* chordFailed(part, `Join error: ${PyJson.repr(valueError)}`)
          }
          case "Complete":
            return yield* complete(part, parsed.members)
        }
      })

    // ---- mark_as_* ----------------------------------------------------------------------------

    const markAs = MarkAs.fromStore(store)

    const backend: ResultBackend = {
      [TypeId]: TypeId,
      store,
      ...markAs,
      get,
      getMany,
      getAll,
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
    return backend
  })

/** The backend as a layer over a `RedisClient` and a `ResultConsumer`. */
export const layer = (
  options: BackendOptions.BackendOptions = {}
): Layer.Layer<ResultBackend, ImproperlyConfigured, RedisClient | ResultConsumer> =>
  Layer.effect(
    ResultBackend,
    Effect.zipWith(make(options), RedisClient, (backend, client) =>
      Telemetry.instrumentBackend(
        TaskIds.validateBackend(backend),
        Telemetry.targetFromUri(client.uri, client.db),
        options
      )
    )
  )
