/**
 * node-redis plumbing for the sentinel queries, the `+switch-master` watcher and the data-node
 * connector: one client per address from prepared options (`RedisConfig.clientOptions`), always with
 * an `error` listener, an interruptible and bounded connect (a stopped server that accepted the TCP
 * connection must not hang discovery), bounded commands and close.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import { ConnectionError } from "@effect-celery/core/Errors"
import type { ConnectionReason } from "@effect-celery/core/Errors"
import type { RedisConfig } from "@effect-celery/redis"
import type { NodeRedis } from "@effect-celery/redis/RedisClient"
import { createClient, ErrorReply } from "redis"

export interface Address {
  readonly host: string
  readonly port: number
}

export const formatAddress = (a: Address): string => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)

export const sameAddress = (a: Address, b: Address): boolean => a.host === b.host && a.port === b.port

export const errorMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Why a node-redis connect/command failure happened, for `ConnectionError.reason`. */
export const reasonOf = (cause: unknown): ConnectionReason => {
  const message = errorMessage(cause)
  if (cause instanceof ErrorReply) {
    if (/^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR (invalid password|AUTH|Client sent AUTH)/.test(message)) return "Auth"
    if (/^(LOADING|BUSY|MASTERDOWN)\b/.test(message)) return "Busy"
    if (/^READONLY\b/.test(message)) return "ReadOnly"
  }
  // node-redis v4 leaves its errors' `name` at "Error": the class tells a connect timeout.
  if (cause instanceof Error && (cause.name === "ConnectionTimeoutError" || cause.constructor.name === "ConnectionTimeoutError")) return "Timeout"
  return "Connect"
}

const fail = (address: Address, cause: unknown) =>
  new ConnectionError({ reason: reasonOf(cause), message: `${formatAddress(address)}: ${errorMessage(cause)}`, cause })

/**
 * A client for `address` with the prepared options (host/port replaced). It never reconnects by
 * itself, and has an `error` listener before anything can fail: node-redis rethrows unhandled
 * `error` events, which would crash the process. Failures surface through the promises; `onError`
 * may observe socket errors too.
 */
export const create = (
  address: Address,
  options: RedisConfig.NodeRedisOptions,
  connectTimeout: Duration.Duration,
  onError: (cause: unknown) => void = () => {}
): NodeRedis => {
  const client = createClient({
    ...options,
    disableOfflineQueue: true,
    // redis-py sends no CLIENT SETINFO: keep the handshake to AUTH/SELECT (and sentinels 7.0 reject it).
    disableClientInfo: true,
    socket: {
      ...options.socket,
      host: address.host,
      port: address.port,
      connectTimeout: Math.max(1, Math.round(Duration.toMillis(connectTimeout))),
      reconnectStrategy: false
    }
  })
  client.on("error", onError)
  return client
}

/** Close now (the socket is destroyed; pending commands fail). Never throws. */
export const destroy = (client: NodeRedis): void => {
  if (client.isOpen) client.disconnect().catch(() => {})
}

/** QUIT bounded by `timeout`, then destroy whatever is left. Never fails, never hangs. */
export const close = (client: NodeRedis, timeout: Duration.DurationInput = Duration.seconds(1)): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!client.isOpen) return Effect.void
    if (!client.isReady) return Effect.sync(() => destroy(client))
    // QUIT through sendCommand: node-redis' quit() marks the client closed before the reply.
    return Effect.tryPromise(() => client.sendCommand(["QUIT"])).pipe(
      Effect.timeout(timeout),
      Effect.exit,
      Effect.zipRight(Effect.sync(() => destroy(client)))
    )
  })

/** Connect (TLS, AUTH, SELECT) within `timeout`; interruptible; on failure the client is destroyed. */
export const connect = (client: NodeRedis, address: Address, timeout: Duration.Duration): Effect.Effect<void, ConnectionError> =>
  Effect.tryPromise({ try: () => client.connect(), catch: (cause) => fail(address, cause) }).pipe(
    Effect.asVoid,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ConnectionError({ reason: "Timeout", message: `${formatAddress(address)}: no connection within ${Duration.format(timeout)}` })
    }),
    Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => destroy(client))))
  )

/** One command within `timeout`; any failure (error replies included) is a `ConnectionError`. */
export const command = (
  client: NodeRedis,
  address: Address,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<unknown, ConnectionError> =>
  Effect.tryPromise({ try: (): Promise<unknown> => client.sendCommand([...args]), catch: (cause) => fail(address, cause) }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ConnectionError({ reason: "Timeout", message: `${formatAddress(address)}: ${args[0] ?? ""} timed out after ${Duration.format(timeout)}` })
    })
  )

/** A connected client, destroyed with the scope (for short-lived sentinel queries). */
export const scoped = (
  address: Address,
  options: RedisConfig.NodeRedisOptions,
  timeout: Duration.Duration
): Effect.Effect<NodeRedis, ConnectionError, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(() => create(address, options, timeout)), (client) => Effect.sync(() => destroy(client))).pipe(
    Effect.tap((client) => connect(client, address, timeout))
  )
