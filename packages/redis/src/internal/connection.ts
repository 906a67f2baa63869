/**
 * The shared command connection behind `RedisClient`: opened on first use (one connect in flight
 * for all callers), replaced after a connection-level failure, watched by the `socket_timeout`
 * watchdog, and closed with the layer's scope. `send` is the one place a command meets the
 * driver: it counts the command in flight for the watchdog and types its failure.
 *
 * Nothing is retried here (callers apply the retry policy), and nothing here batches: the
 * batcher (`batcher.ts`) and `RedisClient.make` build on `live`, `send` and `execute`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type { CommandError } from "@effect-celery/core/Errors"
import { ConnectionError } from "@effect-celery/core/Errors"
import type { NodeRedis, Server } from "../RedisConnection.js"
import { destroy, serverOfOptions } from "../RedisConnection.js"
import { connectError } from "./errors.js"
import type { Failure } from "./lifecycle.js"
import * as Lifecycle from "./lifecycle.js"

/** What the manager needs of `RedisClient.MakeOptions` (documented there). */
export interface Options {
  readonly connector: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
  readonly uri: string
  readonly db: number
  readonly server?: Server | undefined
  readonly socketTimeout?: Duration.DurationInput | undefined
  readonly failFast?: boolean | undefined
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
}

/** One open command connection and what the watchdog and the send path track on it. */
export interface Connection extends Lifecycle.Managed {
  readonly client: NodeRedis
  /** Commands sent and not yet answered. */
  inFlight: number
  /** Replies received so far (the watchdog compares it across ticks). */
  progress: number
}

/** The shared command connection, as the client and its batcher use it. */
export interface Connections {
  /** The connection if it is open and ready to send on now. */
  readonly live: () => Connection | undefined
  /** Types a failure of `command` on `conn`; a connection-level one drops `conn`. */
  readonly failWith: (conn: Connection, command: string, cause: unknown) => Failure
  /** Send one command; exactly one of `onSuccess` / `onFailure` is called, once. */
  readonly send: <A>(
    conn: Connection,
    command: string,
    f: (client: NodeRedis) => Promise<A>,
    onSuccess: (a: A) => void,
    onFailure: (failure: Effect.Effect<never, ConnectionError | CommandError>, isCommandError: boolean) => void
  ) => void
  /** One command on the live connection (connecting first if needed), errors typed. */
  readonly execute: <A>(
    command: string,
    f: (client: NodeRedis) => Promise<A>
  ) => Effect.Effect<A, ConnectionError | CommandError>
}

/**
 * The manager over a connector, in the layer's scope: connects on the first call (or now, with
 * `failFast`), and on close refuses new connections before the open one is closed (`lifecycle.ts`).
 */
export const make = (options: Options): Effect.Effect<Connections, ConnectionError, Scope.Scope> =>
  Effect.gen(function* () {
    const timeoutMillis = options.socketTimeout === undefined ? undefined : Duration.toMillis(options.socketTimeout)

    const watchdog = (conn: Connection, millis: number, drop: (conn: Connection) => Effect.Effect<void>) => {
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

    const open = (scope: Scope.CloseableScope, drop: (conn: Connection) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const client = yield* options.connector.pipe(
          Scope.extend(scope),
          Effect.tap((client) => {
            const ping = Effect.tryPromise({
              try: () => client.ping(),
              catch: (cause) => connectError(options.uri, cause)
            })
            return timeoutMillis === undefined || timeoutMillis <= 0
              ? ping
              : ping.pipe(
                  Effect.timeoutFail({
                    duration: Duration.millis(timeoutMillis),
                    onTimeout: () =>
                      new ConnectionError({
                        reason: "Timeout",
                        message: `PING ${options.uri}: no reply in ${timeoutMillis} ms`
                      })
                  })
                )
          })
        )
        // Where the connector went: the same as `options.server` for a fixed server, the master
        // it found under Sentinel.
        const server = serverOfOptions(client.options)
        yield* Effect.annotateCurrentSpan(Lifecycle.serverAttributes(server))
        const conn: Connection = { client, scope, inFlight: 0, progress: 0, timedOut: false, dropped: false }
        if (timeoutMillis !== undefined && timeoutMillis > 0) {
          yield* watchdog(conn, timeoutMillis, drop).pipe(Effect.interruptible, Effect.forkIn(scope))
        }
        return conn
      }).pipe((effect) => Lifecycle.withConnectSpan(effect, options.db, options.server))

    const lifecycle = yield* Lifecycle.make<Connection>({
      open,
      isReady: (conn) => conn.client.isReady,
      closedError: () => new ConnectionError({ reason: "Shutdown", message: `RedisClient ${options.uri} is closed` }),
      socketTimeoutMillis: timeoutMillis,
      additionalConnectionErrors: options.additionalConnectionErrors
    })
    const { acquire, failWith } = lifecycle

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
    const execute = <A>(
      command: string,
      f: (client: NodeRedis) => Promise<A>
    ): Effect.Effect<A, ConnectionError | CommandError> =>
      Effect.async<A, ConnectionError | CommandError>((resume) => {
        const conn = lifecycle.current
        if (conn !== undefined && conn.client.isReady) {
          runOn(conn, command, f, resume)
        } else {
          resume(
            Effect.flatMap(acquire, (fresh) =>
              Effect.async<A, ConnectionError | CommandError>((resume2) => runOn(fresh, command, f, resume2))
            )
          )
        }
      })

    // Fail fast: the layer fails with a typed error when the server cannot be reached now.
    if (options.failFast === true) yield* acquire

    return { live: lifecycle.live, failWith, send, execute }
  })
