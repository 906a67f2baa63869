/**
 * One command connection's life, the same for one server (`connection.ts`, a node-redis client)
 * and for a cluster (`cluster.ts`, a node-redis cluster object): opened on first use with a single
 * connect in flight for every caller, dropped after a connection-level failure (closed in the
 * background) and opened again on the next use, refused once the layer closes.
 *
 * What differs between the two (how a connection is opened, what its socket-timeout watchdog
 * counts, how a command is sent) stays with them.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { CommandError } from "@effect-celery/core/Errors"
import { ConnectionError } from "@effect-celery/core/Errors"
import type { Server } from "../RedisConnection.js"
import { classify, mustDrop, safeCause, SocketTimeout } from "./errors.js"

/** What the lifecycle keeps of a connection. */
export interface Managed {
  /** Where the connection's resources (and its watchdog) live; closed when it is dropped. */
  readonly scope: Scope.CloseableScope
  dropped: boolean
  /** Set by a socket-timeout watchdog before it destroys the connection: its failures are `Timeout`. */
  timedOut: boolean
}

/** A failure typed for its caller; `isCommandError` tells a reply's error from a lost connection. */
export interface Failure {
  readonly effect: Effect.Effect<never, ConnectionError | CommandError>
  readonly isCommandError: boolean
}

export interface Spec<C extends Managed> {
  /**
   * Open a connection with its resources in `scope` (closed for it if the open fails). `drop` is
   * for its watchdog, which drops it when it times out.
   */
  readonly open: (
    scope: Scope.CloseableScope,
    drop: (conn: C) => Effect.Effect<void>
  ) => Effect.Effect<C, ConnectionError>
  /** Whether the connection can be sent on now. */
  readonly isReady: (conn: C) => boolean
  /** The error of a call made once the layer is closed. */
  readonly closedError: () => ConnectionError
  /** `socket_timeout` in milliseconds, named in the `Timeout` error of a timed-out connection. */
  readonly socketTimeoutMillis: number | undefined
  readonly additionalConnectionErrors: ReadonlyArray<string> | undefined
}

export interface Lifecycle<C extends Managed> {
  /**
   * The connection last opened and not dropped, ready or not. A field, not a function, so the
   * send paths read it as cheaply as a local variable; they check readiness themselves.
   */
  readonly current: C | undefined
  /** The connection if it is open and ready to send on now. */
  readonly live: () => C | undefined
  /** The current connection, or a new one (a single connect in flight, shared by all callers). */
  readonly acquire: Effect.Effect<C, ConnectionError>
  /** Forget a connection and close it in the background (its release is bounded). */
  readonly drop: (conn: C) => Effect.Effect<void>
  /** Types a failure of `command` on `conn`; a connection-level one drops `conn`. */
  readonly failWith: (conn: C, command: string, cause: unknown) => Failure
}

/** OpenTelemetry's `server.address` and `server.port` (none for a unix socket, whose path is the address). */
export const serverAttributes = (server: Server): Record<string, string | number> =>
  server.port !== undefined
    ? { "server.address": server.address, "server.port": server.port }
    : { "server.address": server.address }

/** The span of an open: `RedisClient.connect`, naming the database and, when known, the server. */
export const withConnectSpan = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  db: number,
  server: Server | undefined
): Effect.Effect<A, E, R> =>
  Effect.withSpan(self, "RedisClient.connect", {
    kind: "client",
    captureStackTrace: false,
    attributes: {
      "db.system.name": "redis",
      "db.namespace": String(db),
      ...(server !== undefined ? serverAttributes(server) : {})
    }
  })

/** The lifecycle, in the layer's scope. */
export const make = <C extends Managed>(spec: Spec<C>): Effect.Effect<Lifecycle<C>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const layerScope = yield* Effect.scope
    // The connect runs in a fiber forked from whichever caller comes first; it (and the socket
    // watchdog it starts) keeps the layer's Clock, not that caller's (a test's stopped clock would
    // make the watchdog spin).
    const clock = yield* Effect.clock
    // Connections, their connects and their background closes live in `connections`; the
    // finalizer added after it runs before it on close, so no new connection starts while the
    // open one closes.
    const connections = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
    let connecting: Deferred.Deferred<C, ConnectionError> | undefined
    let closed = false
    // The returned object itself holds `current`, so the send paths read a field of it.
    const self: { current: C | undefined } = { current: undefined }

    const live = (): C | undefined => {
      const conn = self.current
      return conn !== undefined && spec.isReady(conn) ? conn : undefined
    }

    const drop = (conn: C): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (self.current === conn) self.current = undefined
        if (conn.dropped) return Effect.void
        conn.dropped = true
        return Effect.asVoid(Effect.forkIn(Scope.close(conn.scope, Exit.void), connections))
      })

    const failWith = (conn: C, command: string, cause: unknown): Failure => {
      const error = conn.timedOut
        ? new ConnectionError({
            reason: "Timeout",
            message: `${command}: ${new SocketTimeout(spec.socketTimeoutMillis ?? 0).message}`,
            cause: safeCause(cause)
          })
        : classify(command, cause, spec.additionalConnectionErrors)
      return {
        effect: mustDrop(error) ? Effect.zipRight(drop(conn), Effect.fail(error)) : Effect.fail(error),
        isCommandError: error._tag === "CommandError"
      }
    }

    const open: Effect.Effect<C, ConnectionError> = Effect.suspend(() => {
      if (closed) return Effect.fail(spec.closedError())
      return Effect.flatMap(Scope.fork(connections, ExecutionStrategy.sequential), (scope) =>
        spec.open(scope, drop).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      )
    })

    const acquire: Effect.Effect<C, ConnectionError> = Effect.flatMap(Deferred.make<C, ConnectionError>(), (fresh) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(spec.closedError())
        const conn = self.current
        if (conn !== undefined) {
          if (spec.isReady(conn)) return Effect.succeed(conn)
          // Known dead (the socket closed while idle): replace it before sending anything.
          return Effect.zipRight(drop(conn), acquire)
        }
        if (connecting !== undefined) return Deferred.await(connecting)
        connecting = fresh
        const complete = (exit: Exit.Exit<C, ConnectionError>) =>
          Effect.suspend(() => {
            connecting = undefined
            if (Exit.isSuccess(exit)) {
              if (closed)
                return Effect.zipRight(
                  Scope.close(exit.value.scope, Exit.void),
                  Deferred.fail(fresh, spec.closedError())
                )
              self.current = exit.value
              return Deferred.succeed(fresh, exit.value)
            }
            return Exit.isInterrupted(exit) ? Deferred.fail(fresh, spec.closedError()) : Deferred.done(fresh, exit)
          })
        // The connect belongs to the client, not to the caller: an interrupted caller does not
        // abandon the other waiters.
        return Effect.zipRight(
          Effect.forkIn(Effect.withClock(Effect.onExit(open, complete), clock), connections),
          Deferred.await(fresh)
        )
      })
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        self.current = undefined
      })
    )
    return Object.assign(self, { live, acquire, drop, failWith })
  })
