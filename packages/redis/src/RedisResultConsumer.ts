/**
 * Celery's Redis `ResultConsumer` (Pub/Sub) as core's `ResultConsumer`: task state changes as a
 * Stream, with the same channels (= task keys) Celery's workers PUBLISH on.
 *
 * A watch:
 * 1. routes its keys to itself and starts buffering; the shared subscriber SUBSCRIBEs the keys no
 *    other watch holds (many per command) and waits for the acknowledgement;
 * 2. MGETs the keys, so a result stored before the subscription is not missed, then PINGs the
 *    subscriber connection so every message published before that read has arrived;
 * 3. emits, per task, the stored state and the buffered messages in order: the stored value first
 *    unless the buffer holds the same bytes (then that write was published after the subscription
 *    and is emitted in its place), never the same bytes twice in a row;
 * 4. then emits each published change, decoded (a value that does not decode is a `Left`).
 * A task is done at its ready state (SUCCESS, FAILURE, REVOKED): its channel is UNSUBSCRIBEd when
 * no other watch holds it, and the stream ends once every task is done. With `follow` nothing is
 * ever done: every change of every task is emitted until the stream is interrupted. When the stream
 * ends, fails or is interrupted, everything it held is released. A watch that ended by itself (every
 * task ready, so the server was answering) waits, at most `releaseTimeout`, for the server's
 * UNSUBSCRIBE acknowledgement, so `PUBSUB NUMSUB` shows no leftovers afterwards; one cut short
 * (interrupted, timed out, failed, or no longer pulled, as by `Stream.take`) releases in the
 * background and ends at once, so a frozen server never holds it.
 *
 * Better than Celery: one connection and one listener for every watch, channel ref-counting (no
 * leaked subscriptions, #5320/#4824), a dead subscriber noticed at once (not at the next
 * `get_message`, #6963) and resynced exactly once per state, delivery that needs no caller to drain.
 *
 * Reconnect: when the subscriber connection dies (killed, server restart) every watch buffers, the
 * connection is reopened under the retry policy (`retry_policy`, Celery's log lines), every held
 * channel is re-SUBSCRIBEd and read again with MGET, and each watch emits what changed since the
 * bytes it last emitted, so a final state written while disconnected is delivered exactly once.
 * States written and overwritten while disconnected are not seen (Pub/Sub keeps nothing). When the
 * policy gives up, every active watch fails with `RetryLimitExceeded` (Celery's
 * `E_RETRY_LIMIT_EXCEEDED` message) and the next watch starts over. A traced watch's span records the
 * loss (`celery.subscriber.reconnect`) and the resync (`celery.subscriber.resync`) as events.
 *
 * `waitFor` (RedisResultBackend) takes a shortcut with the same semantics (`waitReady`): the same
 * subscribe → read → wait for one task, but the waiter's fiber is resumed by the message itself
 * (no Stream), and it returns without waiting for the UNSUBSCRIBE acknowledgement, which the
 * subscriber's driver sends right after, on a scheduler that runs after the woken fibers.
 *
 * Buffering (a deliberate choice): Pub/Sub cannot be paused, so each watch has an unbounded
 * mailbox and a slow consumer never loses a state. Without `follow` memory is bounded by the
 * number of watched tasks × the states each goes through (a task's last state ends it); with
 * `follow` a consumer that stops pulling while tasks keep changing grows it without bound, as any
 * lossless buffer must. Per watched task the consumer keeps the key string, one entry in two Maps
 * (routing, and node-redis' channel map, shared across tasks) and, only for a task in a non-ready
 * state, the bytes last emitted.
 */
import type * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import type { BackendError, DecodeError } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import { decodeTaskMeta } from "@effect-celery/core/Meta"
import type { TaskMeta } from "@effect-celery/core/Meta"
import { ResultConsumer, TypeId } from "@effect-celery/core/ResultConsumer"
import type { WaitReadyOptions, WaitReadyTimeout, WatchOptions } from "@effect-celery/core/ResultConsumer"
import * as RetryPolicy from "@effect-celery/core/RetryPolicy"
import { isReady } from "@effect-celery/core/TaskState"
import * as Telemetry from "@effect-celery/core/Telemetry"
import * as TaskIds from "@effect-celery/core/TaskIds"
import * as Runtime from "effect/Runtime"
import * as Batcher from "./internal/batcher.js"
import * as Deadlines from "./internal/deadlines.js"
import { driverOf } from "./internal/driver.js"
import * as Partitioned from "./internal/partitioned.js"
import * as Subscriber from "./internal/subscriber.js"
import * as WrongType from "./internal/wrongType.js"
import { RedisClient as RedisClientTag } from "./RedisClient.js"
import { RedisClient } from "./RedisClient.js"

type Item = Either.Either<TaskMeta, DecodeError>

/**
 * Asks whether `keys` (read as missing by a sync's MGET) hold a non-string; `k` gets their types
 * in order, "" for a string or no key. The checks of one step go out as one script call. One
 * callback for a sink's keys, not one a key: a first watch of 1,000,000 missing keys would hold
 * a closure, its context and a list per key (~150 bytes a key) until the reply.
 */
type CheckTypes = (keys: ReadonlyArray<string>, k: (types: ReadonlyArray<string>) => void) => void

/**
 * `waitReady`'s first read (`readFirst`): one GET of `key`, coalesced with the tick's other reads;
 * `k` gets its outcome, once (see `replyOf`). Returns what gives up the read, if anything.
 */
type ReadFirst = (key: string, k: (outcome: unknown) => void) => (() => void) | undefined

/** A first read's outcome (see `Batcher.Enqueue`): the value on a reply, undefined otherwise. */
const replyOf = (outcome: unknown): string | null | undefined => {
  if (!Either.isEither(outcome) || Either.isLeft(outcome)) return undefined
  return typeof outcome.right === "string" ? outcome.right : null
}

/** What a `Watch` remembers as last emitted for a key holding a non-string (no stored value starts with NUL). */
const wrongTypeMark = (type: string): string => `\u0000${type}`

/** Where a `Watch` sends its items: a stream's emitter, or a `Waiter`. */
interface Out {
  readonly single: (item: Item) => unknown
  readonly array: (items: ReadonlyArray<Item>) => unknown
  readonly end: () => void
  readonly halt: (cause: Cause.Cause<BackendError>) => void
}

/** Knobs of the subscriber connection; the defaults suit most uses. */
export interface ConsumerTuning {
  /** Close the subscriber connection after this long with nothing watched. Default 30 s. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  /** Channels per SUBSCRIBE / UNSUBSCRIBE command. Default 1000. */
  readonly subscribeChunk?: number | undefined
  /** Keys per MGET command. Default 1000. */
  readonly mgetChunk?: number | undefined
  /**
   * How long a watch that ended by itself (every task ready) waits for its UNSUBSCRIBE
   * acknowledgement. Default 5 s. A watch cut short, and `waitFor`, never wait for it.
   */
  readonly releaseTimeout?: Duration.DurationInput | undefined
  /**
   * While something is watched and the connection is quiet, PING it this often to notice a
   * connection that died silently (no FIN/RST, e.g. a half-open socket behind a proxy): on no
   * PONG within `healthCheckTimeout` it is dropped, reopened, every channel re-SUBSCRIBEd and every
   * watched key read again. Default: the client's `health_check_interval` when configured, else
   * 30 s; `null` disables it.
   */
  readonly healthCheckInterval?: Duration.DurationInput | null | undefined
  /** A health-check PING unanswered for this long replaces the connection. Default 10 s. */
  readonly healthCheckTimeout?: Duration.DurationInput | undefined
}

class Watch implements Subscriber.Sink {
  /** Bytes last emitted per task, only while the task has emitted a non-final state. */
  private readonly last = new Map<string, string>()
  /** Tasks that reached their ready state (never with `follow`). */
  private done: Set<string> | undefined
  /** Messages received during a sync, as channel, message pairs. */
  private buffer: Array<string> | undefined = []
  /** Items produced during a sync, emitted as one chunk. */
  private out: Array<Item> | undefined
  private remaining: number
  closed = false
  /** Ended by itself: every task reached its ready state. */
  finished = false
  /** A `lost` awaits its `resynced`. */
  private reconnecting = false

  constructor(
    private keys: ReadonlyArray<string>,
    private readonly prefixLength: number,
    private readonly follow: boolean,
    private readonly emit: Out,
    private readonly subscriber: Subscriber.Subscriber,
    /** Records an event on the watch's span, when it has one. */
    private readonly event: ((name: string) => void) | undefined,
    private readonly checkTypes: CheckTypes
  ) {
    this.remaining = keys.length
  }

  lost(): void {
    if (this.event === undefined) return
    this.reconnecting = true
    this.event(Telemetry.EventName.subscriberReconnect)
  }

  resynced(): void {
    if (!this.reconnecting) return
    this.reconnecting = false
    this.event?.(Telemetry.EventName.subscriberResync)
  }

  /** The keys once each (`Subscriber.add` found duplicates). */
  dropDuplicates(): void {
    this.keys = Array.from(new Set(this.keys))
    this.remaining = this.keys.length
  }

  channels(): ReadonlyArray<string> {
    const done = this.done
    return done === undefined || done.size === 0 ? this.keys : this.keys.filter((key) => !done.has(key))
  }

  onMessage(channel: string, message: string): void {
    if (this.closed) return
    if (this.buffer !== undefined) this.buffer.push(channel, message)
    else this.deliver(channel, message)
  }

  beginSync(): void {
    this.buffer = []
  }

  endSync(values: ReadonlyMap<string, string>): void {
    const buffered = this.buffer
    this.buffer = undefined
    if (this.closed) return
    let byChannel: Map<string, Array<string>> | undefined
    if (buffered !== undefined && buffered.length > 0) {
      byChannel = new Map()
      for (let i = 0; i < buffered.length; i += 2) {
        const channel = buffered[i]!
        const list = byChannel.get(channel)
        if (list === undefined) byChannel.set(channel, [buffered[i + 1]!])
        else list.push(buffered[i + 1]!)
      }
    }
    this.out = []
    let absent: Array<string> | undefined
    for (const channel of this.keys) {
      if (this.closed) return
      if (this.done?.has(channel)) continue
      const value = values.get(channel)
      const messages = byChannel?.get(channel)
      if (value === undefined && messages === undefined) (absent ??= []).push(channel)
      // A stored value that is also in the buffer was written after the subscription: it is
      // emitted in its place among the messages, after the older ones.
      if (value !== undefined && (messages === undefined || !messages.includes(value))) this.deliver(channel, value)
      if (messages !== undefined) {
        for (const message of messages) {
          if (this.closed || this.done?.has(channel)) break
          this.deliver(channel, message)
        }
      }
    }
    this.flush()
    if (absent !== undefined) {
      const keys = absent
      this.checkTypes(keys, (types) => {
        for (let i = 0; i < keys.length; i++) {
          const type = types[i] ?? ""
          const channel = keys[i]!
          if (type === "" || this.closed || this.done?.has(channel)) continue
          const mark = wrongTypeMark(type)
          if (this.last.get(channel) === mark) continue
          // As an undecodable value: a Left, and the task is still watched until a ready state.
          this.last.set(channel, mark)
          this.push(Either.left(WrongType.wrongType(channel.slice(this.prefixLength), channel, type)))
        }
      })
    }
  }

  fail(cause: Cause.Cause<BackendError>): void {
    if (this.closed) return
    this.closed = true
    this.flush()
    this.emit.halt(cause)
  }

  private flush(): void {
    const out = this.out
    this.out = undefined
    if (out !== undefined && out.length > 0) this.emit.array(out)
  }

  private push(item: Item): void {
    if (this.out !== undefined) this.out.push(item)
    else this.emit.single(item)
  }

  private deliver(channel: string, raw: string): void {
    if (this.last.get(channel) === raw || this.done?.has(channel)) return
    const item = decodeTaskMeta(channel.slice(this.prefixLength), raw)
    if (!this.follow && Either.isRight(item) && isReady(item.right.status)) {
      ;(this.done ??= new Set()).add(channel)
      this.last.delete(channel)
      this.subscriber.release(this, channel)
      this.push(item)
      if (--this.remaining === 0) {
        this.closed = true
        this.finished = true
        this.flush()
        this.emit.end()
      }
      return
    }
    this.last.set(channel, raw)
    this.push(item)
  }
}

/**
 * The one task `waitReady` waits for, as a sink of its own rather than a `Watch` with a `Deferred`:
 * a waiter wants only the first ready or undecodable item, so it keeps no per-task history and
 * resumes its parked fiber from `settle` directly. Its timeout is an entry in the consumer's
 * `Deadlines`, not a fiber of its own; so is the bound of its first read (`readFirst`), which
 * `Effect.timeoutFail` around the read made a race of two fibers and a timer (~40 kB a call).
 */
class OneTask<E2> implements Subscriber.Sink, Deadlines.Expiring {
  /** Messages received during a sync (from the subscription on). */
  private buffer: Array<string> | undefined
  private resume: ((effect: Effect.Effect<Item, BackendError | E2>) => void) | undefined
  /** Settled, or given up by an interruption: nothing more is delivered. */
  private settled = false
  /** Gives up the first read in flight, when it can be. */
  private dropRead: (() => void) | undefined
  deadline = 0
  heapIndex = -1

  constructor(
    private readonly key: string,
    private readonly taskId: string,
    private readonly subscriber: Subscriber.Subscriber,
    private readonly deadlines: Deadlines.Deadlines,
    private readonly onTimeout: (() => E2) | undefined,
    private readonly checkTypes: CheckTypes
  ) {}

  /** Subscribe → read → wait, after `first`'s read when given; `resume` is the parked fiber's. */
  start(
    resume: (effect: Effect.Effect<Item, BackendError | E2>) => void,
    timeoutMillis: number | undefined,
    first: ReadFirst | undefined
  ): void {
    this.resume = resume
    if (timeoutMillis !== undefined) this.deadlines.add(this, timeoutMillis)
    if (first === undefined) this.subscribe()
    else this.dropRead = first(this.key, this.afterRead)
  }

  /** The first read's outcome: the answer when it settles the wait, else on to the wait. */
  private readonly afterRead = (outcome: unknown): void => {
    this.dropRead = undefined
    if (this.settled) return
    const raw = replyOf(outcome)
    if (typeof raw === "string") this.consider(raw)
    // Missing, not ready, or not read: the wait reads again once subscribed, so nothing stored in
    // between is missed (and a key holding a non-string is found there).
    if (!this.settled) this.subscribe()
  }

  private subscribe(): void {
    // The subscriber syncs a sink that is buffering already.
    this.buffer = []
    this.subscriber.add(this)
  }

  channels(): ReadonlyArray<string> {
    return [this.key]
  }

  onMessage(_channel: string, message: string): void {
    if (this.settled) return
    if (this.buffer !== undefined) this.buffer.push(message)
    else this.consider(message)
  }

  beginSync(): void {
    this.buffer = []
  }

  endSync(values: ReadonlyMap<string, string>): void {
    const buffered = this.buffer
    this.buffer = undefined
    if (this.settled) return
    // As a `Watch` merges: the stored value first unless the buffer holds the same bytes.
    const value = values.get(this.key)
    if (value !== undefined && (buffered === undefined || !buffered.includes(value))) this.consider(value)
    if (buffered !== undefined) for (let i = 0; i < buffered.length && !this.settled; i++) this.consider(buffered[i]!)
    if (value === undefined && !this.settled) {
      this.checkTypes([this.key], ([type = ""]) => {
        if (type !== "") this.settle(Exit.succeed(Either.left(WrongType.wrongType(this.taskId, this.key, type))))
      })
    }
  }

  fail(cause: Cause.Cause<BackendError>): void {
    this.settle(Exit.failCause(cause))
  }

  readonly expire = (): void => {
    if (this.onTimeout !== undefined) this.settle(Exit.fail(this.onTimeout()))
  }

  /**
   * Interrupted: deliver nothing more and release the channel in the background, as a timeout
   * does: the interruption never waits for the UNSUBSCRIBE acknowledgement.
   */
  readonly cancel: Effect.Effect<void> = Effect.sync(() => {
    this.settled = true
    this.deadlines.remove(this)
    this.dropRead?.()
    this.subscriber.detach(this)
  })

  private consider(raw: string): void {
    const item = decodeTaskMeta(this.taskId, raw)
    if (Either.isLeft(item) || isReady(item.right.status)) this.settle(Exit.succeed(item))
  }

  private settle(exit: Exit.Exit<Item, BackendError | E2>): void {
    if (this.settled) return
    this.settled = true
    this.deadlines.remove(this)
    this.dropRead?.()
    // Set by `start`, before anything can settle the wait.
    const resume = this.resume!
    resume(exit)
    // Whatever the outcome, the UNSUBSCRIBE goes out in the background (the driver runs after the
    // woken fiber) and is not awaited: a timeout during a frozen or dead server returns at its
    // deadline, and waits expiring together never queue behind one another's acknowledgement.
    this.subscriber.detach(this)
  }
}

/**
 * Where a watch records its subscriber events (reconnect, resync): its own span, which
 * `Telemetry.instrumentConsumer` makes the stream's parent; never a caller's span (none when
 * tracing is off or under Effect's default tracer).
 */
const watchEvents = (
  parent: Option.Option<Tracer.AnySpan>,
  clock: Clock.Clock
): ((name: string) => void) | undefined => {
  if (parent._tag === "None" || parent.value._tag !== "Span" || parent.value.name !== Telemetry.SpanName.watch)
    return undefined
  const span = parent.value
  return (name) => span.event(name, clock.unsafeCurrentTimeNanos())
}

/** The consumer over the `RedisClient` in context; its subscriber connection lives in the scope. */
export const make = (
  options: BackendOptions = {},
  tuning: ConsumerTuning = {}
): Effect.Effect<ResultConsumer, never, RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const layout = Keys.make(options.keys ?? {})
    const prefixLength = layout.taskKeyprefix.length
    // `waitFor` timeouts and the subscriber's idle timers, on the background scheduler: expiring
    // one never delays a woken waiter.
    const deadlines = yield* Deadlines.make(Subscriber.background)
    const redis = yield* RedisClient
    const mgetChunk = Math.max(1, tuning.mgetChunk ?? 1000)
    const subscriberOptions: Subscriber.SubscriberOptions = {
      retryPolicy: RetryPolicy.merge(options.retryPolicy),
      idleTimeToLive: Duration.decode(tuning.idleTimeToLive ?? Duration.seconds(30)),
      subscribeChunk: Math.max(1, tuning.subscribeChunk ?? 1000),
      mgetChunk,
      releaseTimeout: Duration.decode(tuning.releaseTimeout ?? Duration.seconds(5)),
      healthCheckInterval:
        tuning.healthCheckInterval === null
          ? undefined
          : Duration.decode(tuning.healthCheckInterval ?? redis.healthCheckInterval ?? Duration.seconds(30)),
      healthCheckTimeout: Duration.decode(tuning.healthCheckTimeout ?? Duration.seconds(10)),
      deadlines
    }
    // On a cluster, each channel on a connection to its key's master (see `partitioned.ts`).
    const placement = driverOf(redis).placement
    const subscriber =
      placement === undefined
        ? yield* Subscriber.make(subscriberOptions)
        : yield* Partitioned.make(subscriberOptions, placement)

    // Keys a sync read as missing, checked for a non-string once per step (forked after every sink
    // of the sync has asked), in script calls of `mgetChunk` keys: one call over a million keys
    // would hold the server for its whole TYPE loop. A failed check changes nothing: the wait
    // goes on, and the next resync checks again.
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let checks:
      Array<{ readonly keys: ReadonlyArray<string>; readonly k: (types: ReadonlyArray<string>) => void }> | undefined
    const runChecks = Effect.suspend(() => {
      const batch = checks!
      checks = undefined
      const keys = batch.length === 1 ? batch[0]!.keys : batch.flatMap((check) => check.keys)
      const chunks: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < keys.length; i += mgetChunk) chunks.push(keys.slice(i, i + mgetChunk))
      return Effect.forEach(chunks, (chunk) => WrongType.typesOf(redis, chunk), { concurrency: "unbounded" }).pipe(
        Effect.tap((replies) =>
          Effect.sync(() => {
            // concat, not flat(): flat() is far slower on arrays this long.
            const types = replies.length === 1 ? replies[0]! : ([] as Array<string>).concat(...replies)
            let at = 0
            for (const check of batch) {
              check.k(types.slice(at, at + check.keys.length))
              at += check.keys.length
            }
          })
        ),
        Effect.catchAll((error) =>
          Effect.logDebug(`non-string check of ${keys.length} watched keys failed: ${error.message}`)
        )
      )
    })
    const checkTypes: CheckTypes = (keys, k) => {
      if (checks === undefined) {
        checks = []
        runFork(Effect.zipRight(Effect.yieldNow(), runChecks))
      }
      checks.push({ keys, k })
    }

    /**
     * A task's key as one flat string. `prefix + id` makes a cons string, which the routing Maps
     * flatten in place yet keep as the key: 32 bytes a watched task more (32 MB at 1,000,000).
     */
    const taskKey = (taskId: string): string => [layout.taskKeyprefix, taskId].join("")

    const watch = (taskIds: Iterable<string>, watchOptions?: WatchOptions) => {
      // The keys once, when the stream is made: the stream keeps them, not the ids (nor the
      // callers' copies of the ids, 8 bytes a task each). Duplicates are found by the subscriber's
      // routing rather than a Set here: one pass over the keys instead of two.
      const keys = Array.isArray(taskIds)
        ? (taskIds as ReadonlyArray<string>).map(taskKey)
        : Array.from(taskIds, taskKey)
      return Stream.asyncPush<Item, BackendError>((emit) =>
        Effect.acquireRelease(
          Effect.zipWith(Effect.serviceOption(Tracer.ParentSpan), Effect.clock, (parent, clock) => {
            const follow = watchOptions?.follow === true
            const w = new Watch(keys, prefixLength, follow, emit, subscriber, watchEvents(parent, clock), checkTypes)
            if (keys.length === 0) {
              // Nothing to wait for, with or without `follow` (as the in-memory consumer).
              w.closed = true
              emit.end()
            } else if (subscriber.add(w) > 0) {
              w.dropDuplicates()
            }
            return w
          }),
          (w) =>
            Effect.suspend(() => {
              w.closed = true
              if (w.finished && watchOptions?.detach !== true) return subscriber.remove(w)
              subscriber.detach(w)
              return Effect.void
            })
        )
      )
    }

    // The same subscribe → read → wait as `watch` but no Stream in between: the message resumes
    // the waiter, which returns without waiting for the UNSUBSCRIBE acknowledgement (the channel
    // is released in the background).
    // With `readFirst`, first a GET handed to the client's batching as a callback: no fiber of its
    // own, its bound the waiter's deadline. A client of another making (no callback form) reads
    // in a fiber, interrupted when the wait is settled first.
    const enqueueGet = Batcher.enqueueOf(redis.get)
    const readFirst: ReadFirst =
      enqueueGet !== undefined
        ? (key, k) => {
            enqueueGet(key, k)
            return undefined
          }
        : (key, k) => {
            const fiber = runFork(redis.get(key))
            fiber.addObserver((exit) => k(Exit.isSuccess(exit) ? Either.right(exit.value) : undefined))
            return () => fiber.unsafeInterruptAsFork(fiber.id())
          }

    const waitReady = <E2>(taskId: string, timeout?: WaitReadyTimeout<E2>, waitOptions?: WaitReadyOptions) =>
      Effect.async<Item, BackendError | E2>((resume) => {
        const one = new OneTask<E2>(taskKey(taskId), taskId, subscriber, deadlines, timeout?.onTimeout, checkTypes)
        one.start(
          resume,
          timeout === undefined ? undefined : Duration.toMillis(timeout.duration),
          waitOptions?.readFirst === true ? readFirst : undefined
        )
        return one.cancel
      })

    const consumer: ResultConsumer = { [TypeId]: TypeId, watch, waitReady }
    return consumer
  })

/** `ResultConsumer` over the `RedisClient` in context. */
export const layer = (
  options: BackendOptions = {},
  tuning: ConsumerTuning = {}
): Layer.Layer<ResultConsumer, never, RedisClient> =>
  Layer.scoped(
    ResultConsumer,
    Effect.zipWith(make(options, tuning), RedisClientTag, (consumer, client) =>
      Telemetry.instrumentConsumer(
        TaskIds.validateConsumer(consumer),
        Telemetry.targetFromUri(client.uri, client.db),
        options
      )
    )
  )
