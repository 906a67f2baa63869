/**
 * The shared subscriber connection behind `RedisResultConsumer`: ONE dedicated node-redis
 * connection for every watch, opened on the first watch and closed after `idleTimeToLive` with
 * nothing watched (or when the owning scope closes). On a cluster, one of these per master
 * (`partitioned.ts`).
 *
 * - Channels are ref-counted in a `RouteTable` (channel → sink, or sinks when several watch it); a
 *   channel is SUBSCRIBEd when its first sink arrives and UNSUBSCRIBEd when its last sink leaves.
 * - Every channel of a connection shares one node-redis listener entry, whose single listener
 *   dispatches by channel through the table (`pubsub.ts`: ~350 bytes a channel less than
 *   node-redis' `subscribe`, one SUBSCRIBE for a whole chunk).
 * - One driver fiber owns the connection and runs every SUBSCRIBE / UNSUBSCRIBE / sync, one step at
 *   a time, so node-redis' channel map is exact whenever the driver looks at it. Work that arrives
 *   during a step (new watches, released channels) is batched into the next step.
 * - A sync (new sink, or every sink after a reconnect): the sink buffers messages; SUBSCRIBE what is
 *   missing; MGET the sink's keys (each chunk right after its SUBSCRIBE ack, so a write is seen by the
 *   MGET, the channel, or both); then PING the subscriber connection. The PONG comes after every
 *   message published before the MGET ran, so the sink can merge the values it read with the
 *   messages it buffered without emitting an older state after a newer one.
 * - Loss (an `error` or `end` leaving the client not ready, see `pubsub.ts`): the driver reconnects
 *   under Celery's retry policy (logging `Connection to Redis lost: Retry (n/max) …`),
 *   re-SUBSCRIBEs every routed channel (never an empty SUBSCRIBE, Celery #7040) and resyncs every
 *   sink. When the policy gives up, every sink fails with `RetryLimitExceeded` and the state is
 *   cleared, so the next watch starts fresh.
 * - Each connection lives in a scope forked from the one `make` runs in, so nothing outlives the
 *   layer; closing it QUITs (bounded) and removes the subscriber's listeners from the client.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import type { BackendError, CommandError } from "@effect-celery/core/Errors"
import { ConnectionError, isTransient } from "@effect-celery/core/Errors"
import * as RetryPolicy from "@effect-celery/core/RetryPolicy"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { RedisClient } from "../RedisClient.js"
import type { NodeRedis } from "../RedisConnection.js"
import type * as Deadlines from "./deadlines.js"
import { driverOf } from "./driver.js"
import { classify } from "./errors.js"
import * as PubSub from "./pubsub.js"
import { RouteTable } from "./routeTable.js"

/** A watcher of some channels. Every method is called synchronously and must not throw. */
export interface Sink {
  /** A message on one of the sink's channels, in server order (from the socket reader). */
  readonly onMessage: (channel: string, message: string) => void
  /** The channels the sink still holds (registered and not released). */
  readonly channels: () => ReadonlyArray<string>
  /** A sync starts: buffer messages from now on, dropping what an aborted sync buffered. */
  readonly beginSync: () => void
  /**
   * The sync is complete: `values` holds the stored value of every held channel that has one, read
   * after its subscription, and every message published before the read has been delivered.
   */
  readonly endSync: (values: ReadonlyMap<string, string>) => void
  /** The subscription failed for good: end the sink's stream with this cause. */
  readonly fail: (cause: Cause.Cause<BackendError>) => void
  /** The connection was lost while the sink was held: a resync follows (or `fail`, at a give-up). */
  readonly lost?: () => void
  /** The resync after `lost` is complete: the sink was synced on a new connection. */
  readonly resynced?: () => void
}

export interface Subscriber {
  /**
   * Route the sink's channels to it and schedule its sync (it must be buffering already). Returns
   * how many of the channels it lists were listed before (duplicates, routed once): the routing
   * Map is the dedup, so a caller need not build a Set of its own first.
   */
  readonly add: (sink: Sink) => number
  /** Stop routing `channel` to `sink`; UNSUBSCRIBE it (in the background) when nobody else needs it. */
  readonly release: (sink: Sink, channel: string) => void
  /**
   * Release everything the sink holds and wait, at most `releaseTimeout` (also inside a finalizer),
   * until the server has acknowledged it.
   */
  readonly remove: (sink: Sink) => Effect.Effect<void>
  /** Release everything the sink holds without waiting: the UNSUBSCRIBE goes out in the background. */
  readonly detach: (sink: Sink) => void
}

export interface SubscriberOptions {
  readonly retryPolicy: RetryPolicy.RetryPolicy
  /** Close the connection after this long with nothing watched. */
  readonly idleTimeToLive: Duration.Duration
  /** Channels per SUBSCRIBE / UNSUBSCRIBE command. */
  readonly subscribeChunk: number
  /** Keys per MGET command. */
  readonly mgetChunk: number
  /** Bound on how long `remove` waits for the UNSUBSCRIBE acknowledgement. */
  readonly releaseTimeout: Duration.Duration
  /** PING the connection after this long without work while something is watched; none if undefined. */
  readonly healthCheckInterval: Duration.Duration | undefined
  /** A health-check PING not answered within this replaces the connection. */
  readonly healthCheckTimeout: Duration.Duration
  /** Where the idle timers run (shared with `waitFor`'s timeouts). */
  readonly deadlines: Deadlines.Deadlines
}

interface Connection {
  readonly pubsub: PubSub.PubSub
  readonly scope: Scope.CloseableScope
  dead: boolean
}

/**
 * Runs a fiber's continuations from `setImmediate`: after the microtasks of the current I/O
 * callback, so the fibers a message wakes (waiters, streams) run before housekeeping (the driver's
 * UNSUBSCRIBE, a finished waiter's cleanup) that the same message triggered.
 */
export const background: Scheduler.Scheduler = Scheduler.makeBatched((run) => setImmediate(run))

/** `self`, whose first attempt already failed with `first`: that failure, then `self` again. */
const replayFirst = <A, E, R>(first: E, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let replayed = false
  return Effect.suspend(() => {
    if (replayed) return self
    replayed = true
    return Effect.fail(first)
  })
}

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * `connect` opens each connection (default: the client driver's `connect`); a partitioned
 * subscriber gives each of its parts its own (`partitioned.ts`).
 */
export const make = (
  options: SubscriberOptions,
  connect?: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
): Effect.Effect<Subscriber, never, RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const connectOne = connect ?? driverOf(redis).connect
    const retry = RetryPolicy.retryReconnect(options.retryPolicy)
    // The parent of every connection's scope, forked before the finalizer below is added: at
    // shutdown the driver stops and the sinks fail first, then whatever connection is left closes.
    const connections = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)

    let conn: Connection | undefined
    let closed = false
    const table = new RouteTable<Sink>(() => conn !== undefined && !conn.dead)

    const wakeup = yield* Effect.makeLatch(false)
    const wake = () => wakeup.unsafeOpen()

    const release = (sink: Sink, channel: string): void => {
      // The driver runs on `background`: after the fibers this message woke.
      if (table.release(sink, channel)) wake()
    }

    const detach = (sink: Sink): void => {
      if (table.detach(sink)) wake()
    }

    const failSink = (sink: Sink, cause: Cause.Cause<BackendError>) => {
      detach(sink)
      sink.fail(cause)
    }

    const deliver = (sink: Sink, channel: string, message: string) => {
      try {
        sink.onMessage(channel, message)
      } catch (defect) {
        // Never let a bug surface inside node-redis' socket reader (it would crash the process).
        failSink(sink, Cause.die(defect))
      }
    }

    // The one listener of every channel.
    const dispatch = (message: string, channel: string): void => table.forEachRoute(channel, message, deliver)

    /** Every sink failed and forgotten: nothing may survive a give-up, the next watch starts clean. */
    const failAll = (cause: Cause.Cause<BackendError>) =>
      Effect.sync(() => {
        for (const sink of table.clear()) sink.fail(cause)
      })

    // --- commands -------------------------------------------------------------------------------

    const call = <A>(command: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (cause): ConnectionError | CommandError => classify(command, cause) })

    /**
     * node-redis queues a (UN)SUBSCRIBE even on a connection that is already lost (it checks
     * readiness for other commands only) and, without reconnects, never answers or fails it: the
     * driver would wait forever. So check, in the same tick as the call; a loss after it fails the
     * queued command.
     */
    const lost = (command: string) =>
      new ConnectionError({ reason: "Closed", message: `${command}: the subscriber connection is lost` })

    const pubsub = <A>(c: Connection, command: string, f: () => Promise<A>) =>
      Effect.suspend(() => (c.dead || !c.pubsub.isReady() ? Effect.fail(lost(command)) : call(command, f)))

    // Only channels node-redis does not know yet are sent; never an empty SUBSCRIBE.
    const subscribe = (c: Connection, channels: ReadonlyArray<string>) =>
      pubsub(c, "SUBSCRIBE", () => c.pubsub.subscribe(channels))

    /** Send an UNSUBSCRIBE now; the effect it returns waits for the acknowledgement. */
    const unsubscribe = (
      c: Connection,
      channels: ReadonlyArray<string>
    ): Effect.Effect<Effect.Effect<void, ConnectionError | CommandError>, ConnectionError | CommandError> =>
      Effect.suspend(() => {
        if (c.dead || !c.pubsub.isReady()) return Effect.fail(lost("UNSUBSCRIBE"))
        let sent: Promise<void>
        try {
          sent = c.pubsub.unsubscribe(channels)
        } catch (cause) {
          return Effect.fail(classify("UNSUBSCRIBE", cause))
        }
        // Awaited later, or never if the step fails first: never an unhandled rejection.
        sent.catch(() => {})
        return Effect.succeed(call("UNSUBSCRIBE", () => sent))
      })

    const mget = (keys: ReadonlyArray<string>, into: Map<string, string>) =>
      Effect.map(redis.mget(keys), (values) => {
        for (let i = 0; i < keys.length; i++) {
          const v = values[i]
          if (v !== null && v !== undefined) into.set(keys[i]!, v)
        }
      })

    const open: Effect.Effect<Connection, ConnectionError> = Effect.gen(function* () {
      const scope = yield* Scope.fork(connections, ExecutionStrategy.sequential)
      const client = yield* Scope.extend(connectOne, scope).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      const onLoss = () => {
        if (c.dead) return
        c.dead = true
        wake()
      }
      const c: Connection = { pubsub: PubSub.attach(client, dispatch, onLoss), scope, dead: false }
      // Runs first at close (finalizers run in reverse), before the QUIT: the connector's own
      // `error` listener stays, so nothing the close emits goes unhandled.
      yield* Scope.addFinalizer(scope, Effect.sync(c.pubsub.detach))
      if (!c.pubsub.isReady()) onLoss() // it may have died before the listeners were attached
      return c
    })

    /**
     * Every way a connection ends passes here: a death noticed by the driver, a failed command or
     * sync, an unanswered health check, the idle timer, shutdown. Whichever it was, losing it while
     * something is watched is a reconnect (the next `establish` is a resync), counted once here.
     */
    const close = (c: Connection) =>
      Effect.suspend(() => {
        if (conn === c) {
          conn = undefined
          if (!closed && table.sinkCount > 0) lostWhileWatched()
        }
        c.dead = true
        return Scope.close(c.scope, Exit.void)
      })

    /**
     * `self`, a reply awaited on `c`, within `healthCheckTimeout`; past it `c` is destroyed and the
     * step fails (the driver reconnects and resyncs). A connection gone silent (no FIN, no RST)
     * would otherwise hold the driver, and every watch after it, forever.
     */
    const replyWithin = <A>(c: Connection, what: string, self: Effect.Effect<A, ConnectionError | CommandError>) =>
      self.pipe(
        Effect.timeoutFail({
          duration: options.healthCheckTimeout,
          onTimeout: () =>
            new ConnectionError({
              reason: "Timeout",
              message: `${what} on the subscriber connection within ${Duration.format(options.healthCheckTimeout)}`
            })
        }),
        Effect.tapErrorTag("ConnectionError", (error) =>
          Effect.sync(() => error.reason === "Timeout" && c.pubsub.destroy())
        )
      )

    /**
     * SUBSCRIBE what `c` lacks among `channels`, MGET them all (a chunk right after its SUBSCRIBE
     * ack), then PING `c` as the barrier, then end the sinks' sync.
     */
    const sync = (c: Connection, batch: ReadonlyArray<Sink>, channels: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const known = c.pubsub.subscribed()
        const present: Array<string> = []
        let missing = channels
        // A fresh connection (a first watch, a resync) knows none: no pass over 100k channels then.
        if (known.size > 0) {
          const unknown: Array<string> = []
          for (const channel of channels) (known.has(channel) ? present : unknown).push(channel)
          missing = unknown
        }
        const values = new Map<string, string>()
        const steps: Array<Effect.Effect<void, ConnectionError | CommandError>> = []
        for (const chunk of chunksOf(missing, options.subscribeChunk)) {
          steps.push(
            Effect.zipRight(
              subscribe(c, chunk),
              Effect.forEach(chunksOf(chunk, options.mgetChunk), (keys) => mget(keys, values), { discard: true })
            )
          )
        }
        for (const keys of chunksOf(present, options.mgetChunk)) steps.push(mget(keys, values))
        // One chunk (the usual case) runs in this fiber; several run side by side.
        yield* steps.length === 1 ? steps[0]! : Effect.all(steps, { concurrency: "unbounded", discard: true })
        // The barrier is also a liveness check.
        yield* replyWithin(c, "PING: no PONG", call("PING", c.pubsub.ping))
        for (const sink of batch) {
          if (!table.has(sink)) continue
          try {
            sink.endSync(values)
          } catch (defect) {
            failSink(sink, Cause.die(defect))
          }
        }
      })

    /** One attempt at a fresh connection with every sink resynced (retried by the policy). */
    const establish: Effect.Effect<void, ConnectionError | CommandError> = Effect.gen(function* () {
      if (table.sinkCount === 0 || closed) return
      const batch = table.beginResync()
      for (const sink of batch) sink.beginSync()
      const c = yield* open
      // Current before the sync ends: a task done during it must release through this connection.
      conn = c
      yield* sync(c, batch, table.channels()).pipe(Effect.onError(() => close(c)))
      if (resyncing) {
        resyncing = false
        Telemetry.subscriberResyncs.unsafeUpdate(1, [])
        for (const sink of batch) if (table.has(sink)) sink.resynced?.()
      }
    })

    /**
     * Incremental work on a live connection: releases, then first syncs of new sinks. The
     * UNSUBSCRIBE goes out without waiting for its acknowledgement before the sync's SUBSCRIBE
     * (their channels never overlap: a released channel is one nobody routes), so a watch that
     * starts as another ends does not wait a round trip more. The acknowledgement is awaited last,
     * within `healthCheckTimeout` (`replyWithin`): it settles the releases `remove` waits on.
     */
    const takeUnsubscribes = (c: Connection) => {
      const known = c.pubsub.subscribed()
      return table.takeUnsubscribes((channel) => known.has(channel))
    }

    const step = (c: Connection) =>
      Effect.gen(function* () {
        let released: Effect.Effect<void, ConnectionError | CommandError> = Effect.void
        const unsubscribes = takeUnsubscribes(c)
        if (unsubscribes !== undefined) {
          const { channels: gone, target } = unsubscribes
          const sent = yield* Effect.forEach(chunksOf(gone, options.subscribeChunk), (chunk) => unsubscribe(c, chunk))
          released = Effect.zipRight(
            replyWithin(
              c,
              "UNSUBSCRIBE: no acknowledgement",
              Effect.forEach(sent, (acknowledged) => acknowledged, { discard: true })
            ),
            Effect.sync(() => table.settleReleases(target))
          )
        }
        const syncs = table.takeSyncs()
        if (syncs !== undefined) {
          const batch = syncs.sinks
          yield* sync(c, batch, syncs.channels).pipe(
            Effect.catchTag("CommandError", (error) =>
              Effect.sync(() => {
                for (const sink of batch) failSink(sink, Cause.fail(error))
              }).pipe(Effect.zipRight(Effect.fail(error)))
            )
          )
        }
        yield* released
      })

    const iteration = Effect.gen(function* () {
      if (conn !== undefined && conn.dead) {
        yield* close(conn)
        if (table.sinkCount > 0) yield* Effect.logWarning("Subscriber connection lost; reconnecting")
      }
      if (conn === undefined) {
        table.dropUnsubscribes()
        if (table.sinkCount === 0) return
        // A failure no wait can cure (rejected credentials or TLS handshake) ends the watches at
        // once instead of after the whole retry budget.
        const exit = yield* Effect.exit(
          Effect.catchIf(establish, isTransient, (first) => retry(replayFirst(first, establish)))
        )
        if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) yield* failAll(exit.cause)
        return
      }
      const c = conn
      const exit = yield* Effect.exit(step(c))
      if (Exit.isFailure(exit)) {
        table.settleReleases()
        // Connection errors reconnect on the next iteration; a command error leaves node-redis'
        // channel map unknown, so start over on a fresh connection as well.
        yield* close(c)
        if (table.sinkCount > 0) yield* Effect.logWarning("Subscriber command failed; reconnecting", exit.cause)
        wake()
      }
    })

    // Metrics: the channels gauge is moved by this subscriber's own changes (several consumers share it).
    let reportedChannels = 0
    const reportChannels = () => {
      if (table.channelCount === reportedChannels || closed) return
      Telemetry.subscribedChannels.unsafeModify(table.channelCount - reportedChannels, [])
      reportedChannels = table.channelCount
    }
    let resyncing = false
    const lostWhileWatched = () => {
      resyncing = true
      Telemetry.subscriberReconnects.unsafeUpdate(1, [])
      for (const sink of table.allSinks()) sink.lost?.()
    }

    const hasWork = () =>
      (conn !== undefined && conn.dead) || table.hasPending() || (conn === undefined && table.sinkCount > 0)

    /**
     * A connection can die without a FIN or RST (a silent network partition): nothing would tell
     * us until TCP keep-alive gives up, minutes later. While something is watched and nothing
     * happens, PING it now and then; no PONG in time means it is gone.
     */
    const healthCheck = (c: Connection) =>
      call("PING", c.pubsub.ping).pipe(
        Effect.timeout(options.healthCheckTimeout),
        Effect.catchAll(() =>
          Effect.suspend(() => {
            if (c.dead || conn !== c) return Effect.void
            // Destroyed, not QUIT: a silent connection would hold a graceful close for its bound.
            c.pubsub.destroy()
            return Effect.zipRight(
              Effect.logWarning("Subscriber connection did not answer a health-check PING; replacing it"),
              close(c)
            )
          })
        )
      )

    /**
     * The driver's idle timers (`idleTimeToLive` with nothing watched, `healthCheckInterval` while
     * something is) count from when it last went idle: an entry in the shared `Deadlines`, added as
     * the driver goes idle and removed as it wakes (anything that changes which timer applies
     * wakes it), rather than a `timeout` race on every idle turn, which forks two fibers each time.
     */
    const timerFor = (): Duration.Duration | undefined =>
      conn === undefined ? undefined : table.sinkCount === 0 ? options.idleTimeToLive : options.healthCheckInterval
    let timerFired = false
    const idleTimer: Deadlines.Expiring = {
      deadline: 0,
      heapIndex: -1,
      expire: () => {
        timerFired = true
        wake()
      }
    }

    /** What a fired timer does, checked again now: close an unused connection, or health-check a used one. */
    const onTimer = Effect.suspend(() => {
      const c = conn
      if (c === undefined || c.dead) return Effect.void
      if (table.sinkCount === 0) return close(c)
      return options.healthCheckInterval === undefined ? Effect.void : healthCheck(c)
    })

    const driver = Effect.gen(function* () {
      while (true) {
        if (!hasWork()) {
          const duration = timerFor()
          if (duration !== undefined) options.deadlines.add(idleTimer, Duration.toMillis(duration))
          yield* wakeup.await
          options.deadlines.remove(idleTimer)
        }
        wakeup.unsafeClose()
        if (timerFired) {
          timerFired = false
          yield* onTimer
        }
        yield* iteration
        reportChannels()
      }
    })

    const shutdownError = () =>
      new ConnectionError({ reason: "Shutdown", message: "The result consumer was shut down" })
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        Telemetry.subscribedChannels.unsafeModify(-reportedChannels, [])
        reportedChannels = 0
        const shutdown = shutdownError()
        for (const sink of table.clear()) sink.fail(Cause.fail(shutdown))
        return conn === undefined ? Effect.void : close(conn)
      })
    )
    yield* driver.pipe(
      Effect.annotateLogs({ package: "@effect-celery/redis", module: "RedisResultConsumer", fiber: "subscriber" }),
      Effect.interruptible,
      Effect.withScheduler(background),
      Effect.forkScoped
    )

    return {
      add: (sink) => {
        if (closed) {
          sink.fail(Cause.fail(shutdownError()))
          return 0
        }
        const duplicates = table.add(sink)
        wake()
        return duplicates
      },
      release,
      detach,
      remove: (sink) =>
        Effect.suspend(() => {
          detach(sink)
          if (table.releasesSettled()) return Effect.void
          const done = Deferred.unsafeMake<void>(FiberId.none)
          table.whenReleased(() => Deferred.unsafeDone(done, Exit.void))
          // Interruptible: `remove` runs in finalizers, where an uninterruptible wait would outlast
          // its timeout until the acknowledgement came (never, from a frozen server).
          return Deferred.await(done).pipe(Effect.interruptible, Effect.timeout(options.releaseTimeout), Effect.ignore)
        })
    }
  })
