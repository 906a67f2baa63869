/**
 * The Redis connection service shared by the backend, the consumer and Sentinel.
 *
 * `make` holds one shared command connection (node-redis pipelines what many fibers send in the
 * same tick) and replaces it after a connection-level failure: the failing call fails with a typed
 * `ConnectionError`, the next call connects again (one reconnect in flight for all callers).
 * Nothing is retried here: callers apply Celery's retry policy. How a connection is opened is the
 * `connector`'s business, so Sentinel plugs its own master discovery in.
 *
 * Layers:
 * - `layer(config)`: a `RedisConfig` (host/port or unix socket, db, ACL user, TLS…).
 * - `layerUrl(url, options)`: a Celery `result_backend` URL (`redis://`, `rediss://`,
 *   `redis+socket://`), with `redis_backend_use_ssl` and the `redis_*` settings as options.
 * - `layerConfig()`: the same from the environment (see `urlConfig` for the variables).
 * TLS files are read with `node:fs` when the layer is built.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scope from "effect/Scope"
import type { CommandError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import { ConnectionError } from "@effect-celery/core/Errors"
import { classify, connectError, mustDrop, safeCause, SocketTimeout } from "./internal/errors.js"
import type { NodeRedis } from "./RedisConnection.js"
import { connector, destroy } from "./RedisConnection.js"
import * as RedisConfig from "./RedisConfig.js"
import * as RedisUrl from "./RedisUrl.js"

export type { NodeRedis } from "./RedisConnection.js"

export const TypeId: unique symbol = Symbol.for("@effect-celery/redis/RedisClient")
export type TypeId = typeof TypeId

export interface RedisClient {
  readonly [TypeId]: TypeId
  /** The server as Celery's `as_uri()` shows it: password masked, no query. */
  readonly uri: string
  /** The selected database. */
  readonly db: number
  /**
   * `health_check_interval`, when configured: node-redis PINGs the command connection this often,
   * and the result consumer checks its subscriber connection's liveness at this interval.
   */
  readonly healthCheckInterval?: Duration.Duration | undefined
  /**
   * Run commands on the shared command connection. node-redis pipelines commands issued in the same
   * tick, so many fibers share it cheaply. A connection-level failure fails with `ConnectionError`
   * and drops the connection, so the next call reconnects (re-discovering the master under
   * Sentinel); an error reply fails with `CommandError` (a `READONLY` reply is a `ConnectionError`
   * with reason "ReadOnly"). Nothing is retried here: callers apply the retry policy.
   */
  readonly execute: <A>(command: string, f: (client: NodeRedis) => Promise<A>) => Effect.Effect<A, ConnectionError | CommandError>
  /**
   * `GET key` on the command connection, errors as `execute`. The GETs that any fibers issue in
   * the same tick go out as one MGET (chunks of `MGET_CHUNK`): one node-redis command for many
   * reads. Unlike GET, MGET reads a key holding a non-string as missing; an error reply to a batch
   * (an ACL denial, say) sends each of its keys again as its own GET, so it fails only its own caller.
   */
  readonly get: (key: string) => Effect.Effect<string | null, ConnectionError | CommandError>
  /**
   * `get` whose callers resume with `outcome(value, key)` rather than the value, computed in the
   * loop that hands a batch out (see `Batched.outcome`).
   */
  readonly getWith: <O, E>(
    outcome: (value: string | null, key: string) => Either.Either<O, E>
  ) => (key: string) => Effect.Effect<O, E | ConnectionError | CommandError>
  /**
   * A command many callers share: the items that fibers submit in the same tick go out as one
   * `many` call (at most `maxBatch` items each), a lone item as `one`, and each caller is resumed
   * with the `outcome` of its own reply. Errors as `execute`; an error reply to a whole batch sends
   * each of its items again through `one`, so it fails only its own caller. `get` is one of these.
   */
  readonly batched: <I, R, O = R, E = never>(
    spec: Batched<I, R, O, E>
  ) => (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>
  /**
   * A new dedicated connection (for SUBSCRIBE), connected and ready, closed when the scope closes.
   * It never reconnects by itself: its owner sees `end` and asks for a new one.
   */
  readonly connect: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
}

/** How `RedisClient.batched` sends a coalesced command. */
export interface Batched<I, R, O = R, E = never> {
  /** Names the command in errors. */
  readonly command: string
  /** Most items in one `many` call (bounds the request, the reply and the server's time on it). */
  readonly maxBatch: number
  /** One item alone (a batch of one, and each item again after an error reply to its batch). */
  readonly one: (client: NodeRedis, item: I) => Promise<R>
  /** Several items: one reply per item, in order; an `Error` (a nested error reply) fails only its item. */
  readonly many: (client: NodeRedis, items: Array<I>) => Promise<ReadonlyArray<R | Error>>
  /**
   * The caller's outcome from its item's reply, computed in the loop that hands a batch out rather
   * than by each resumed fiber, where decoding task metas was measured slower. A throw is a defect
   * of that caller alone.
   */
  readonly outcome: (reply: R, item: I) => Either.Either<O, E>
}

/**
 * Most keys in one MGET, coalesced `get`s and `getMany` alike (bounds the request and the reply;
 * Celery sends all of them at once). For coalesced gets a thousand keys in one MGET was measured
 * cheaper than two halves (less client CPU); one long read is sent in halves instead (see
 * `RedisResultBackend`), where the latency of the one call is what counts.
 */
export const MGET_CHUNK = 1024

/** Coalesced batches below twice this size go as one command (each command costs tens of µs of client CPU). */
const MIN_HALF_BATCH = 16

export const RedisClient: Context.Tag<RedisClient, RedisClient> = Context.GenericTag<RedisClient>(
  "@effect-celery/redis/RedisClient"
)

export { connector } from "./RedisConnection.js"
export type { ConnectorOptions } from "./RedisConnection.js"

// ---------------------------------------------------------------------------------------------
// make
// ---------------------------------------------------------------------------------------------

export interface MakeOptions {
  /** Opens one connected, ready client inside the given scope. */
  readonly connector: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
  readonly uri: string
  readonly db: number
  /**
   * `socket_timeout`: when commands are in flight and no reply arrives for this long, the command
   * connection is destroyed and its pending commands fail with `ConnectionError("Timeout")`.
   * Default: none.
   */
  readonly socketTimeout?: Duration.DurationInput | undefined
  /**
   * Connect while the layer is built: one attempt (connect and PING), no retry, and the layer
   * fails with its `ConnectionError` when the server cannot be reached. Default `false`: nothing
   * is opened before the first call, which connects (and is retried like any lost connection).
   */
  readonly failFast?: boolean | undefined
  /**
   * Error-reply prefixes retried like a lost connection, beyond LOADING, BUSY, READONLY,
   * MASTERDOWN, TRYAGAIN and CLUSTERDOWN (Celery 5.7's `additional_connection_errors`): a reply
   * starting with one is a `ConnectionError("Busy")`, retried under the policy. Default: none.
   */
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
  /** `health_check_interval`, exposed as `RedisClient.healthCheckInterval`. */
  readonly healthCheckInterval?: Duration.DurationInput | undefined
}

interface Connection {
  readonly client: NodeRedis
  readonly scope: Scope.CloseableScope
  /** Commands sent and not yet answered. */
  inFlight: number
  /** Replies received so far (the watchdog compares it across ticks). */
  progress: number
  timedOut: boolean
  dropped: boolean
}

/**
 * The service over a connector: connects on the first call (or while built, with `failFast`),
 * keeps the shared command connection, replaces it after a loss, and closes everything with the
 * scope (graceful QUIT with a bound).
 *
 * Lazy by default, as Celery connects on first use: an application started before its Redis (a
 * container, a systemd unit, a failover in progress) builds its layers, and its first store is
 * retried under the retry policy like any lost connection, logging Celery's
 * `Connection to Redis lost: Retry (n/max) …` lines. A connection that cannot succeed by waiting
 * (rejected credentials, a rejected TLS handshake) fails that first call at once.
 */
export const make = (options: MakeOptions): Effect.Effect<RedisClient, ConnectionError, Scope.Scope> =>
  Effect.gen(function* () {
    const layerScope = yield* Effect.scope
    // The connect runs in a fiber forked from whichever caller comes first; it (and the socket
    // watchdog it starts) keeps the layer's Clock, not that caller's (a test's stopped clock would
    // make the watchdog spin).
    const clock = yield* Effect.clock
    const timeoutMillis = options.socketTimeout === undefined ? undefined : Duration.toMillis(options.socketTimeout)
    const additional = options.additionalConnectionErrors
    let current: Connection | undefined
    let connecting: Deferred.Deferred<Connection, ConnectionError> | undefined
    let closed = false

    const closedError = () => new ConnectionError({ reason: "Shutdown", message: `RedisClient ${options.uri} is closed` })

    /** Forget a connection and close it in the background (its release is bounded). */
    const drop = (conn: Connection): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (current === conn) current = undefined
        if (conn.dropped) return Effect.void
        conn.dropped = true
        return Effect.asVoid(Effect.forkIn(Scope.close(conn.scope, Exit.void), layerScope))
      })

    const watchdog = (conn: Connection, millis: number): Effect.Effect<void> => {
      let seen = conn.progress
      let stalledSince = 0
      const tick = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (conn.inFlight === 0 || conn.progress !== seen) {
          seen = conn.progress
          stalledSince = now
          return Effect.void
        }
        if (now - stalledSince < millis) return Effect.void
        conn.timedOut = true
        destroy(conn.client)
        return drop(conn)
      })
      const period = Duration.millis(Math.max(10, Math.floor(millis / 4)))
      return Effect.flatMap(Clock.currentTimeMillis, (start) => {
        stalledSince = start
        return Effect.forever(Effect.zipRight(Effect.sleep(period), tick))
      })
    }

    const open: Effect.Effect<Connection, ConnectionError> = Effect.gen(function* () {
      if (closed) return yield* Effect.fail(closedError())
      const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
      const client = yield* options.connector.pipe(
        Scope.extend(scope),
        Effect.tap((client) => {
          const ping = Effect.tryPromise({ try: () => client.ping(), catch: (cause) => connectError(options.uri, cause) })
          return timeoutMillis === undefined || timeoutMillis <= 0 ? ping : ping.pipe(
            Effect.timeoutFail({
              duration: Duration.millis(timeoutMillis),
              onTimeout: () => new ConnectionError({ reason: "Timeout", message: `PING ${options.uri}: no reply in ${timeoutMillis} ms` })
            })
          )
        }),
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      const conn: Connection = { client, scope, inFlight: 0, progress: 0, timedOut: false, dropped: false }
      if (timeoutMillis !== undefined && timeoutMillis > 0) {
        yield* watchdog(conn, timeoutMillis).pipe(Effect.interruptible, Effect.forkIn(scope))
      }
      return conn
    }).pipe(
      Effect.withSpan("RedisClient.connect", {
        kind: "client",
        captureStackTrace: false,
        attributes: { "db.system.name": "redis", "server.address": options.uri, "db.namespace": String(options.db) }
      })
    )

    /** The live connection, or a new one (a single connect in flight, shared by all callers). */
    const acquire: Effect.Effect<Connection, ConnectionError> = Effect.flatMap(
      Deferred.make<Connection, ConnectionError>(),
      (fresh) =>
        Effect.suspend(() => {
          if (closed) return Effect.fail(closedError())
          const conn = current
          if (conn !== undefined) {
            if (conn.client.isReady) return Effect.succeed(conn)
            // Known dead (the socket closed while idle): replace it before sending anything.
            return Effect.zipRight(drop(conn), acquire)
          }
          if (connecting !== undefined) return Deferred.await(connecting)
          connecting = fresh
          const complete = (exit: Exit.Exit<Connection, ConnectionError>) =>
            Effect.suspend(() => {
              connecting = undefined
              if (Exit.isSuccess(exit)) {
                if (closed) return Effect.zipRight(Scope.close(exit.value.scope, Exit.void), Deferred.fail(fresh, closedError()))
                current = exit.value
                return Deferred.succeed(fresh, exit.value)
              }
              return Exit.isInterrupted(exit) ? Deferred.fail(fresh, closedError()) : Deferred.done(fresh, exit)
            })
          // The connect belongs to the client, not to the caller: an interrupted caller does not
          // abandon the other waiters.
          return Effect.zipRight(
            Effect.forkIn(Effect.withClock(Effect.onExit(open, complete), clock), layerScope),
            Deferred.await(fresh)
          )
        })
    )

    const failWith = (
      conn: Connection,
      command: string,
      cause: unknown
    ): { readonly effect: Effect.Effect<never, ConnectionError | CommandError>; readonly isCommandError: boolean } => {
      const error = conn.timedOut
        ? new ConnectionError({
          reason: "Timeout",
          message: `${command}: ${new SocketTimeout(timeoutMillis ?? 0).message}`,
          cause: safeCause(cause)
        })
        : classify(command, cause, additional)
      return {
        effect: mustDrop(error) ? Effect.zipRight(drop(conn), Effect.fail(error)) : Effect.fail(error),
        isCommandError: error._tag === "CommandError"
      }
    }

    /** Send one command; exactly one of `onSuccess` / `onFailure` is called, once. */
    const send = <A>(
      conn: Connection,
      command: string,
      f: (client: NodeRedis) => Promise<A>,
      onSuccess: (a: A) => void,
      onFailure: (failure: Effect.Effect<never, ConnectionError | CommandError>, isCommandError: boolean) => void
    ): void => {
      const fail = (cause: unknown) => {
        const failure = failWith(conn, command, cause)
        onFailure(failure.effect, failure.isCommandError)
      }
      let promise: Promise<A>
      try {
        promise = Promise.resolve(f(conn.client))
      } catch (cause) {
        fail(cause)
        return
      }
      conn.inFlight++
      promise.then(
        (a) => {
          conn.inFlight--
          conn.progress++
          onSuccess(a)
        },
        (cause: unknown) => {
          conn.inFlight--
          conn.progress++
          fail(cause)
        }
      )
    }

    const runOn = <A>(
      conn: Connection,
      command: string,
      f: (client: NodeRedis) => Promise<A>,
      resume: (effect: Effect.Effect<A, ConnectionError | CommandError>) => void
    ): void => send(conn, command, f, (a) => resume(Effect.succeed(a)), resume)

    // Hot path: one async step when the connection is up; `current` is read when the effect runs.
    const execute = <A>(command: string, f: (client: NodeRedis) => Promise<A>): Effect.Effect<A, ConnectionError | CommandError> =>
      Effect.async<A, ConnectionError | CommandError>((resume) => {
        const conn = current
        if (conn !== undefined && conn.client.isReady) {
          runOn(conn, command, f, resume)
        } else {
          resume(
            Effect.flatMap(acquire, (fresh) =>
              Effect.async<A, ConnectionError | CommandError>((resume2) => runOn(fresh, command, f, resume2)))
          )
        }
      })

    // ---- coalesced commands ---------------------------------------------------------------------
    // One node-redis command costs several µs of client CPU whatever its size (an MGET key about a
    // fifth of a GET). Callers park in `Effect.async`; one microtask after the first item of a
    // tick, the batch is sent.
    // Replies that arrive together are handed out one batch per event-loop turn, and the next
    // batch only after node-redis has written what the last one's callers sent (it writes in a
    // setImmediate of its own): the server works on those while the client handles the next
    // batch, so client and server overlap instead of taking turns (measurements: bench/RESULTS.md,
    // "Design measurements").
    let turnBusy = false
    const nextTurns: Array<() => void> = []
    const endTurn = (): void => {
      if (nextTurns.length === 0) turnBusy = false
      else setImmediate(nextTurn)
    }
    const nextTurn = (): void => {
      setImmediate(endTurn)
      nextTurns.shift()!()
    }
    const deliver = (f: () => void): void => {
      if (turnBusy) {
        nextTurns.push(f)
        return
      }
      turnBusy = true
      setImmediate(endTurn)
      f()
    }
    const batched = <I, R, O = R, E = never>(
      spec: Batched<I, R, O, E>
    ): ((item: I) => Effect.Effect<O, E | ConnectionError | CommandError>) => {
      type Resume = (effect: Effect.Effect<O, E | ConnectionError | CommandError>) => void
      let items: Array<I> = []
      let resumes: Array<Resume> = []
      let callers: Array<Fiber.RuntimeFiber<unknown, unknown> | undefined> = []
      // Batches sent and not yet handed out to their callers.
      let inFlight = 0

      const outcomeOf = (reply: R, item: I): Effect.Effect<O, E> => {
        try {
          return spec.outcome(reply, item)
        } catch (cause) {
          return Effect.die(cause)
        }
      }

      const alone = (item: I): Effect.Effect<O, E | ConnectionError | CommandError> =>
        Effect.flatMap(execute(spec.command, (c) => spec.one(c, item)), (reply) => outcomeOf(reply, item))

      const sendBatch = (conn: Connection, batch: Array<I>, waiting: ReadonlyArray<Resume>): void => {
        if (batch.length === 1) {
          const item = batch[0]!
          const resume = waiting[0]!
          return send(conn, spec.command, (c) => spec.one(c, item), (reply) => resume(outcomeOf(reply, item)), resume)
        }
        inFlight++
        send(conn, spec.command, (c) => spec.many(c, batch), (replies) => deliver(() => {
          inFlight--
          // All outcomes first, then all resumes: decoding between resumes was measured slower.
          const outcomes = new Array<Effect.Effect<O, E | ConnectionError | CommandError>>(waiting.length)
          for (let i = 0; i < waiting.length; i++) {
            const r = replies[i]
            outcomes[i] = r instanceof Error
              ? failWith(conn, spec.command, r).effect
              : r === undefined
              ? failWith(conn, spec.command, new Error(`no reply for item ${i} of ${batch.length}`)).effect
              : outcomeOf(r, batch[i]!)
          }
          for (let i = 0; i < waiting.length; i++) waiting[i]!(outcomes[i]!)
        }), (failure, isCommandError) => {
          inFlight--
          // An error reply to the whole batch: each item on its own, so it fails only its own caller.
          for (let i = 0; i < waiting.length; i++) waiting[i]!(isCommandError ? alone(batch[i]!) : failure)
        })
      }

      const flush = (): void => {
        const batch = items
        const waiting = resumes
        const fibers = callers
        items = []
        resumes = []
        callers = []
        // Withdraw the callers interrupted while parked (their fiber has resumed itself).
        let kept = 0
        for (let i = 0; i < batch.length; i++) {
          const fiber = fibers[i]
          if (fiber !== undefined && !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))) continue
          batch[kept] = batch[i]!
          waiting[kept] = waiting[i]!
          kept++
        }
        if (kept === 0) return
        batch.length = kept
        waiting.length = kept
        const conn = current
        if (conn === undefined || !conn.client.isReady) {
          // No live connection: each caller takes the reconnecting path.
          for (let i = 0; i < waiting.length; i++) waiting[i]!(alone(batch[i]!))
          return
        }
        if (batch.length <= spec.maxBatch) {
          // With one batch in flight the client idles while the server works and the other way
          // round: a large batch with none in flight goes in two halves, so that one half's
          // callers run while the other is served (and the two stay apart from then on).
          if (inFlight > 0 || batch.length < 2 * MIN_HALF_BATCH) return sendBatch(conn, batch, waiting)
          const half = Math.ceil(batch.length / 2)
          sendBatch(conn, batch.slice(0, half), waiting.slice(0, half))
          return sendBatch(conn, batch.slice(half), waiting.slice(half))
        }
        for (let i = 0; i < batch.length; i += spec.maxBatch) {
          sendBatch(conn, batch.slice(i, i + spec.maxBatch), waiting.slice(i, i + spec.maxBatch))
        }
      }

      // A caller interrupted while parked is withdrawn at the flush: its item is never sent (once
      // sent, it cannot be taken back; the reply is then dropped with the caller). The flush reads
      // the caller's fiber rather than a canceller being registered: a canceller wraps every call
      // in an `onInterrupt`, which costs `get` much of its throughput (bench/RESULTS.md).
      return (item) =>
        Effect.withFiberRuntime<O, E | ConnectionError | CommandError>((fiber, status) =>
          Effect.async((resume) => {
            if (items.length === 0) queueMicrotask(flush)
            items.push(item)
            resumes.push(resume)
            // An uninterruptible caller still waits for its reply, interrupted or not.
            callers.push(RuntimeFlags.interruptible(status.runtimeFlags) ? fiber : undefined)
          })
        )
    }

    const getWith = <O, E>(outcome: (value: string | null, key: string) => Either.Either<O, E>) =>
      batched<string, string | null, O, E>({
        command: "GET",
        maxBatch: MGET_CHUNK,
        one: (c, key) => c.get(key),
        many: (c, keys) => c.mGet(keys),
        outcome
      })
    const get = getWith(Either.right)

    // Fail fast: the layer fails with a typed error when the server cannot be reached now.
    if (options.failFast === true) yield* acquire

    // Added last so it runs first on close: no new connection starts while we shut down.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        current = undefined
      })
    )

    return RedisClient.of({
      [TypeId]: TypeId,
      uri: options.uri,
      db: options.db,
      healthCheckInterval: options.healthCheckInterval === undefined ? undefined : Duration.decode(options.healthCheckInterval),
      execute,
      get,
      getWith,
      batched,
      connect: options.connector
    })
  }).pipe(Effect.annotateLogs({ package: "@effect-celery/redis", module: "RedisClient" }))

// ---------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------

/** `make` for a `RedisConfig` (TLS files read). */
export const fromConfig = (
  config: RedisConfig.RedisConfig
): Effect.Effect<RedisClient, ConnectionError | ImproperlyConfigured, Scope.Scope> =>
  Effect.flatMap(RedisConfig.clientOptions(config), (clientOptions) => {
    const socketTimeout = RedisConfig.socketTimeoutMillis(config)
    const healthCheck = RedisConfig.healthCheckMillis(config)
    return make({
      connector: connector(clientOptions, {
        target: RedisConfig.targetOf(config),
        connectTimeout: Duration.millis(RedisConfig.connectTimeoutMillis(config))
      }),
      uri: RedisConfig.displayUri(config),
      db: RedisConfig.dbOf(config),
      failFast: config.failFast,
      additionalConnectionErrors: config.additionalConnectionErrors,
      ...(healthCheck !== undefined ? { healthCheckInterval: Duration.millis(healthCheck) } : {}),
      ...(socketTimeout !== undefined ? { socketTimeout: Duration.millis(socketTimeout) } : {})
    })
  })

/** A `RedisClient` for a `RedisConfig` (host/port or unix `path`, db, ACL user, TLS, timeouts). */
export const layer = (config: RedisConfig.RedisConfig): Layer.Layer<RedisClient, ConnectionError | ImproperlyConfigured> =>
  Layer.scoped(RedisClient, fromConfig(config))

/**
 * The same as `layer`: TLS files no longer go through a `FileSystem`.
 * @deprecated since 0.2.0, use `layer`.
 */
export const layerWithoutFileSystem = layer

/**
 * A `RedisClient` for a Celery `result_backend` URL (`redis://`, `rediss://`, `redis+socket://`),
 * parsed exactly as Celery 5.2.6 does (`RedisUrl.parse`); `options` carries the settings that are
 * not in the URL (`redis_backend_use_ssl`, `redis_socket_timeout`, `redis_host`…).
 */
export const layerUrl = (
  url: string | Redacted.Redacted,
  options: RedisUrl.UrlOptions = {}
): Layer.Layer<RedisClient, ConnectionError | ImproperlyConfigured> =>
  Layer.scoped(RedisClient, Effect.flatMap(RedisUrl.toConfig(url, options), fromConfig))

/**
 * The same as `layerUrl`: TLS files no longer go through a `FileSystem`.
 * @deprecated since 0.2.0, use `layerUrl`.
 */
export const layerUrlWithoutFileSystem = layerUrl

/**
 * The `UrlOptions` read from the environment, next to the URL:
 * - `CELERY_RESULT_BACKEND` (required, redacted): the result backend URL.
 * - `CELERY_REDIS_BACKEND_USE_SSL`: `redis_backend_use_ssl` as a JSON object
 *   (`{"ssl_cert_reqs": "required", "ssl_ca_certs": "/path/ca.pem", …}`).
 * - `CELERY_REDIS_SOCKET_TIMEOUT`, `CELERY_REDIS_SOCKET_CONNECT_TIMEOUT` (seconds, floats),
 *   `CELERY_REDIS_SOCKET_KEEPALIVE` (boolean), `CELERY_REDIS_CLIENT_NAME`,
 *   `CELERY_REDIS_HOST`, `CELERY_REDIS_PORT`, `CELERY_REDIS_USERNAME`, `CELERY_REDIS_PASSWORD`
 *   (redacted): Celery's `redis_*` settings.
 */
export const urlConfig: Config.Config<{ readonly url: Redacted.Redacted; readonly options: RedisUrl.UrlOptions }> = Config.all({
  url: Config.redacted("CELERY_RESULT_BACKEND").pipe(Config.withDescription("Celery result_backend URL")),
  useSsl: Config.option(
    Config.string("CELERY_REDIS_BACKEND_USE_SSL").pipe(
      Config.mapOrFail((text) => {
        try {
          const value: unknown = JSON.parse(text)
          if (typeof value === "object" && value !== null && !Array.isArray(value)) {
            return Either.right(value as Readonly<Record<string, unknown>>)
          }
        } catch {
          // fall through to the error below
        }
        return Either.left(ConfigError.InvalidData([], "expected a JSON object (redis_backend_use_ssl)"))
      }),
      Config.withDescription("redis_backend_use_ssl as a JSON object")
    )
  ),
  socketTimeout: Config.option(Config.number("CELERY_REDIS_SOCKET_TIMEOUT")),
  socketConnectTimeout: Config.option(Config.number("CELERY_REDIS_SOCKET_CONNECT_TIMEOUT")),
  socketKeepalive: Config.option(Config.boolean("CELERY_REDIS_SOCKET_KEEPALIVE")),
  clientName: Config.option(Config.string("CELERY_REDIS_CLIENT_NAME")),
  host: Config.option(Config.string("CELERY_REDIS_HOST")),
  port: Config.option(Config.integer("CELERY_REDIS_PORT")),
  username: Config.option(Config.string("CELERY_REDIS_USERNAME")),
  password: Config.option(Config.redacted("CELERY_REDIS_PASSWORD"))
}).pipe(
  Config.map((c) => ({
    url: c.url,
    options: {
      ...Option.match(c.useSsl, { onNone: () => ({}), onSome: (useSsl) => ({ useSsl }) }),
      ...Option.match(c.socketTimeout, { onNone: () => ({}), onSome: (s) => ({ socketTimeout: s }) }),
      ...Option.match(c.socketConnectTimeout, { onNone: () => ({}), onSome: (s) => ({ socketConnectTimeout: s }) }),
      ...Option.match(c.socketKeepalive, { onNone: () => ({}), onSome: (k) => ({ socketKeepalive: k }) }),
      ...Option.match(c.clientName, { onNone: () => ({}), onSome: (n) => ({ clientName: n }) }),
      ...Option.match(c.host, { onNone: () => ({}), onSome: (h) => ({ host: h }) }),
      ...Option.match(c.port, { onNone: () => ({}), onSome: (p) => ({ port: p }) }),
      ...Option.match(c.username, { onNone: () => ({}), onSome: (u) => ({ username: u }) }),
      ...Option.match(c.password, { onNone: () => ({}), onSome: (p) => ({ password: p }) })
    } satisfies RedisUrl.UrlOptions
  }))
)

/** `layerUrl` over `urlConfig` (Celery's settings from the environment). */
export const layerConfig = (): Layer.Layer<RedisClient, ConnectionError | ImproperlyConfigured | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(urlConfig, ({ options, url }) => layerUrl(url, options)))
