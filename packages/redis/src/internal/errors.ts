/**
 * node-redis failure → `ConnectionError` / `CommandError`. Shared by the client, the backend, the
 * consumer and Sentinel so every package draws the transient/permanent line in the same place
 * (Celery's `connection_errors` vs `channel_errors`). `RedisErrors` is its public face.
 */
import { CommandError, ConnectionError, type ConnectionReason } from "@effect-celery/core/Errors"
import { ErrorReply } from "redis"

/** Node socket error codes that mean "could not open a connection". */
const CONNECT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOENT", // unix socket path missing
  "EACCES",
  "EADDRNOTAVAIL",
  "ENOTSOCK"
])

/** Node socket error codes that mean "an open connection went away". */
const CLOSED_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_SOCKET_CLOSED"
])

/**
 * node-redis client-state errors, matched by class name (the classes are not all re-exported
 * alike). node-redis v4 leaves their `name` at "Error", so the constructor's name is what tells
 * them apart: a command in flight when its connection is disconnected (after a Sentinel failover,
 * say) fails with `DisconnectsClientError` and must count as a lost connection.
 */
const CLOSED_NAMES: ReadonlySet<string> = new Set([
  "ClientClosedError",
  "ClientOfflineError",
  "DisconnectsClientError",
  "SocketClosedUnexpectedlyError"
])

/** Marker for a command that outlived the socket timeout (our watchdog closes the connection). */
export class SocketTimeout extends Error {
  constructor(readonly millis: number) {
    super(`Timeout reading from socket (${millis} ms)`)
    this.name = "SocketTimeout"
  }
}

const codeOf = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const code = (cause as { readonly code?: unknown }).code
  return typeof code === "string" ? code : undefined
}

/** The error's `name`, or its class's name when `name` is the generic "Error" (node-redis v4's own). */
const nameOf = (cause: unknown): string => {
  if (typeof cause !== "object" || cause === null) return ""
  const name = (cause as { readonly name?: unknown }).name
  if (typeof name === "string" && name !== "Error") return name
  const className = (cause as { readonly constructor?: { readonly name?: unknown } }).constructor?.name
  return typeof className === "string" ? className : typeof name === "string" ? name : ""
}

/** A readable message for anything thrown or rejected. */
export const messageOf = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "string") return cause
  try {
    return String(cause)
  } catch {
    return "unknown error"
  }
}

/**
 * The reason an error reply stands for when it is a connection-level condition, else undefined.
 * A reply starting with one of `additional` (Celery 5.7's `additional_connection_errors`) is
 * "Busy": retried under the policy on the same connection.
 */
export const replyReason = (message: string, additional?: ReadonlyArray<string>): ConnectionReason | undefined => {
  if (message.startsWith("READONLY")) return "ReadOnly"
  if (
    message.startsWith("LOADING") ||
    message.startsWith("BUSY") ||
    message.startsWith("MASTERDOWN") ||
    message.startsWith("TRYAGAIN") ||
    message.startsWith("CLUSTERDOWN")
  )
    return "Busy"
  if (
    message.startsWith("WRONGPASS") ||
    message.startsWith("NOAUTH") ||
    message.startsWith("ERR invalid password") ||
    message.startsWith("ERR AUTH") ||
    message.startsWith("ERR Client sent AUTH")
  )
    return "Auth"
  if (additional !== undefined) {
    for (const prefix of additional) if (prefix.length > 0 && message.startsWith(prefix)) return "Busy"
  }
  return undefined
}

const isTlsCode = (code: string): boolean =>
  code.startsWith("ERR_TLS_") ||
  code.startsWith("ERR_SSL_") ||
  code.startsWith("CERT_") ||
  code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ||
  code === "UNABLE_TO_GET_ISSUER_CERT" ||
  code === "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" ||
  code === "DEPTH_ZERO_SELF_SIGNED_CERT" ||
  code === "SELF_SIGNED_CERT_IN_CHAIN" ||
  code === "HOSTNAME_MISMATCH" ||
  code === "ERR_SSL_WRONG_VERSION_NUMBER"

/**
 * The connection-level reason of a failure, or undefined when it is a command failure.
 * `phase` tells socket errors of the connect phase ("Connect") from those of an open connection.
 */
export const connectionReason = (
  cause: unknown,
  phase: "connect" | "command" = "command",
  additional?: ReadonlyArray<string>
): ConnectionReason | undefined => {
  if (cause instanceof ErrorReply) return replyReason(cause.message, additional)
  if (cause instanceof SocketTimeout) return "Timeout"
  const name = nameOf(cause)
  if (name === "ConnectionTimeoutError") return "Timeout"
  if (CLOSED_NAMES.has(name)) return phase === "connect" ? "Connect" : "Closed"
  if (name === "ReconnectStrategyError") {
    return connectionReason((cause as { readonly socketError?: unknown }).socketError, phase) ?? "Closed"
  }
  const code = codeOf(cause)
  if (code !== undefined) {
    if (code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT") return "Timeout"
    if (CONNECT_CODES.has(code)) return "Connect"
    if (CLOSED_CODES.has(code)) return phase === "connect" ? "Connect" : "Closed"
    if (isTlsCode(code)) return "Tls"
  }
  const message = messageOf(cause)
  if (message === "The client is closed" || message === "Socket closed unexpectedly") {
    return phase === "connect" ? "Connect" : "Closed"
  }
  if (message === "Connection timeout") return "Timeout"
  // Anything else from the socket layer while connecting (TLS alerts without a code, …).
  if (phase === "connect" && !(cause instanceof TypeError)) return "Connect"
  return undefined
}

/**
 * The cause as kept in our errors: a plain `Error` with name, message and code. Driver errors can
 * carry circular data (a TLS error holds the peer certificate chain), which would make every
 * `toString`/`toJSON` of the error throw.
 */
export const safeCause = (cause: unknown): unknown => {
  if (!(cause instanceof Error)) return typeof cause === "object" && cause !== null ? messageOf(cause) : cause
  const copy = new Error(cause.message)
  copy.name = cause.name
  const code = codeOf(cause)
  if (code !== undefined) (copy as Error & { code?: string }).code = code
  if (cause.stack !== undefined) copy.stack = cause.stack
  return copy
}

/**
 * Classify a failure of `command`: connection-level → `ConnectionError`, the rest → `CommandError`
 * (`additional`: further error-reply prefixes that are connection-level, see `replyReason`).
 */
export const classify = (
  command: string,
  cause: unknown,
  additional?: ReadonlyArray<string>
): ConnectionError | CommandError => {
  const reason = connectionReason(cause, "command", additional)
  return reason !== undefined
    ? new ConnectionError({ reason, message: `${command}: ${messageOf(cause)}`, cause: safeCause(cause) })
    : new CommandError({ command, message: messageOf(cause), cause: safeCause(cause) })
}

/** A failure while opening a connection to `target` (always a `ConnectionError`). */
export const connectError = (target: string, cause: unknown): ConnectionError => {
  const reason = connectionReason(cause, "connect") ?? "Connect"
  const what =
    reason === "Auth"
      ? "Authentication failed"
      : reason === "Tls"
        ? "TLS handshake rejected"
        : reason === "Timeout"
          ? "Timeout"
          : "Error"
  return new ConnectionError({
    reason,
    message: `${what} connecting to ${target}: ${messageOf(cause)}`,
    cause: safeCause(cause)
  })
}

/**
 * Whether a connection that produced this error must be replaced: everything connection-level except
 * a Busy reply (the socket is fine, the server is loading), which would only cause reconnect churn.
 */
export const mustDrop = (error: ConnectionError | CommandError): boolean =>
  error._tag === "ConnectionError" && error.reason !== "Busy"
