/**
 * One node-redis v4 connection's lifecycle: create, connect, one bounded command, close. The one
 * place the options this project forces on node-redis are written, shared by `RedisClient`
 * (command and subscriber connections) and `@effect-celery/sentinel` (sentinel queries, the
 * `+switch-master` watcher, the master connections).
 *
 * - `reconnectStrategy: false` and `disableOfflineQueue: true`: node-redis never reconnects or
 *   queues by itself, because `RedisClient` owns reconnection and callers own retries.
 * - `CLIENT SETINFO LIB-NAME node-redis(effect-celery_v<version>)` and `LIB-VER <node-redis
 *   version>` (node-redis' own, with this library as the suffix Redis documents for higher-level
 *   libraries, `jedis(redis-om-spring_v1.0.0)`): pipelined with AUTH, CLIENT SETNAME and SELECT in
 *   the connect's one write, so no round trip is added; an error reply (Redis before 7.2, an ACL
 *   without `+client|setinfo`) is dropped by node-redis without a log line or a failed connect.
 * - An `error` listener is attached before anything can fail (logged at debug through the caller's
 *   runtime): node-redis rethrows unhandled `error` events, which would crash the process.
 * - The connect (socket, TLS, AUTH, SELECT, CLIENT SETNAME) is interruptible and bounded; a failed
 *   or interrupted connect destroys the half-open client. Failures are typed with `RedisErrors`.
 * - The close is a `QUIT` bounded by a timeout, then the socket is destroyed.
 *
 * This module exposes node-redis types on purpose: it is the adapter to the driver, for code that
 * plugs into `RedisClient.make({ connector })`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { CommandError } from "@effect-celery/core/Errors"
import { ConnectionError } from "@effect-celery/core/Errors"
import { createClient } from "redis"
import { classify, connectError, messageOf } from "./internal/errors.js"
import { type NodeRedisOptions, serverUri } from "./RedisConfig.js"

/** A node-redis v4 client as `createClient()` returns it. */
export type NodeRedis = ReturnType<typeof createClient>

/**
 * This library's version, announced in `CLIENT SETINFO LIB-NAME` (kept equal to the package's
 * version by a test).
 */
export const LIB_VERSION = "0.2.0"

/** The suffix node-redis puts in parentheses after its own name in `CLIENT SETINFO LIB-NAME`. */
export const CLIENT_INFO_TAG = `effect-celery_v${LIB_VERSION}`

/** Default bound on a connect when neither the options nor the caller give one. */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)
/** Default bound on the graceful `QUIT` at close. */
export const DEFAULT_CLOSE_TIMEOUT: Duration.Duration = Duration.seconds(1)

export interface ConnectorOptions {
  /** How the target is named in error messages (default: `targetOfOptions`, Celery's `as_uri()`). */
  readonly target?: string | undefined
  /** Bound on the whole connect (socket, TLS, AUTH, SELECT). Default: the socket's connectTimeout, else 5 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Bound on the graceful QUIT at release before the socket is destroyed. Default 1 s. */
  readonly closeTimeout?: Duration.DurationInput | undefined
}

export interface CreateOptions {
  /** How the target is named in logs and error messages (default: from the socket options). */
  readonly target?: string | undefined
  /** node-redis' own socket connect timeout; the caller bounds the whole connect with `connect`. */
  readonly connectTimeout: Duration.Duration
  /** Also told of every `error` event (after it is logged), e.g. to notice a lost subscription. */
  readonly onError?: ((cause: unknown) => void) | undefined
}

/**
 * The server of node-redis options as `RedisConfig.serverUri` names it (Celery's `as_uri()`, the
 * password masked): `redis://:**@127.0.0.1:6379/0`, `socket:///run/redis.sock`; `scheme`
 * "sentinel" for a sentinel.
 */
export const targetOfOptions = (options: NodeRedisOptions, scheme?: string): string => {
  const socket = options.socket
  const path = socket !== undefined && "path" in socket && typeof socket.path === "string" ? socket.path : undefined
  const host = socket !== undefined && "host" in socket && typeof socket.host === "string" ? socket.host : undefined
  const port = socket !== undefined && "port" in socket && typeof socket.port === "number" ? socket.port : undefined
  const tls = socket !== undefined && "tls" in socket && socket.tls === true
  return serverUri({
    scheme: scheme ?? (tls ? "rediss" : "redis"),
    host,
    port,
    path,
    username: options.username,
    password: options.password !== undefined,
    db: options.database ?? 0
  })
}

/** Where a connection goes, as OpenTelemetry's `server.address` / `server.port` name it. */
export interface Server {
  /** The host name or IP address as configured (no brackets), or a unix socket's path. */
  readonly address: string
  /** The TCP port; none for a unix socket. */
  readonly port?: number | undefined
}

/** The `Server` of node-redis options (a unix socket: its path, no port). */
export const serverOfOptions = (options: NodeRedisOptions | undefined): Server => {
  const socket = options?.socket
  if (socket !== undefined && "path" in socket && typeof socket.path === "string") return { address: socket.path }
  const host = socket !== undefined && "host" in socket && typeof socket.host === "string" ? socket.host : "localhost"
  const port = socket !== undefined && "port" in socket && typeof socket.port === "number" ? socket.port : 6379
  return { address: host, port }
}

/** `options` with what this project forces on every node-redis client. */
export const forcedOptions = (options: NodeRedisOptions, connectTimeout: Duration.Duration): NodeRedisOptions => ({
  clientInfoTag: CLIENT_INFO_TAG,
  ...options,
  disableOfflineQueue: true,
  socket: {
    ...options.socket,
    connectTimeout: Math.max(1, Math.round(Duration.toMillis(connectTimeout))),
    reconnectStrategy: false
  }
})

/**
 * A client (not yet connected) with the forced options and an `error` listener. Invalid options fail
 * with `ConnectionError("Connect")`.
 */
export const create = (
  options: NodeRedisOptions,
  createOptions: CreateOptions
): Effect.Effect<NodeRedis, ConnectionError> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const target = createOptions.target ?? targetOfOptions(options)
    const runSync = Runtime.runSync(runtime)
    const onError = (cause: unknown) => {
      try {
        runSync(Effect.logDebug(`node-redis ${target}: ${messageOf(cause)}`))
      } catch {
        // logging must never turn a socket event into a crash
      }
      createOptions.onError?.(cause)
    }
    return Effect.try({
      try: () => {
        const client = createClient(forcedOptions(options, createOptions.connectTimeout))
        client.on("error", onError)
        return client
      },
      catch: (cause) => connectError(target, cause)
    })
  })

/** Close now (the socket is destroyed; pending commands fail). Never throws. */
export const destroy = (client: NodeRedis): void => {
  if (!client.isOpen) return
  client.disconnect().catch(() => {})
}

/**
 * Connect within `timeout`: interruptible (also inside an uninterruptible region such as an
 * `acquireRelease` acquire), and a failed, timed-out or interrupted connect destroys the client.
 */
export const connect = (
  client: NodeRedis,
  target: string,
  timeout: Duration.Duration
): Effect.Effect<void, ConnectionError> =>
  Effect.async<void, ConnectionError>((resume) => {
    client.connect().then(
      () => resume(Effect.void),
      (cause: unknown) => {
        destroy(client)
        resume(Effect.fail(connectError(target, cause)))
      }
    )
    return Effect.sync(() => destroy(client))
  }).pipe(
    Effect.interruptible,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ConnectionError({
          reason: "Timeout",
          message: `Timeout connecting to ${target} (${Duration.format(timeout)})`
        })
    })
  )

/**
 * Graceful but bounded: QUIT (after whatever is in flight, since replies are ordered), then destroy
 * the socket if it is still open. `QUIT` goes through `sendCommand`, not `quit()`: node-redis'
 * `quit()` marks the client closed before the reply, after which a hung socket can no longer be
 * destroyed through the public API. Never fails.
 */
export const release = (
  client: NodeRedis,
  closeTimeout: Duration.DurationInput = DEFAULT_CLOSE_TIMEOUT
): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!client.isOpen) return Effect.void
    if (!client.isReady) return Effect.sync(() => destroy(client))
    return Effect.tryPromise(() => client.sendCommand(["QUIT"])).pipe(
      // Releases run uninterruptibly; the bound needs an interruptible QUIT.
      Effect.interruptible,
      Effect.timeoutOption(closeTimeout),
      Effect.exit,
      Effect.zipRight(Effect.sync(() => destroy(client)))
    )
  })

/**
 * One command within `timeout`, outside `RedisClient`'s shared connection (a sentinel query, a
 * `ROLE` check). Failures are classified as `RedisClient` classifies them; no reply in time is
 * `ConnectionError("Timeout")`.
 */
export const command = (
  client: NodeRedis,
  target: string,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<unknown, ConnectionError | CommandError> => {
  const name = args[0] ?? ""
  return Effect.tryPromise({
    try: (): Promise<unknown> => client.sendCommand([...args]),
    catch: (cause) => classify(name, cause)
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ConnectionError({
          reason: "Timeout",
          message: `${target}: ${name} timed out after ${Duration.format(timeout)}`
        })
    })
  )
}

/**
 * Opens node-redis clients from `clientOptions`, each a scoped resource: created with the forced
 * options, connected within the connect timeout, released with a bounded QUIT. Failures are typed:
 * connect timeout → "Timeout", WRONGPASS/NOAUTH → "Auth", a rejected TLS handshake → "Tls",
 * refused/DNS → "Connect".
 */
export const connector = (
  clientOptions: NodeRedisOptions,
  options: ConnectorOptions = {}
): Effect.Effect<NodeRedis, ConnectionError, Scope.Scope> => {
  const target = options.target ?? targetOfOptions(clientOptions)
  const socketTimeout = clientOptions.socket?.connectTimeout
  const connectTimeout =
    options.connectTimeout !== undefined
      ? Duration.decode(options.connectTimeout)
      : typeof socketTimeout === "number" && socketTimeout > 0
        ? Duration.millis(socketTimeout)
        : DEFAULT_CONNECT_TIMEOUT
  const closeTimeout = Duration.decode(options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT)
  return Effect.acquireRelease(
    Effect.flatMap(create(clientOptions, { target, connectTimeout }), (client) =>
      Effect.as(connect(client, target, connectTimeout), client)
    ),
    (client) => release(client, closeTimeout)
  )
}
