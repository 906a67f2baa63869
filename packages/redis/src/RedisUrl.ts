/**
 * Celery 5.2.6 result-backend URLs, read exactly as `celery.app.backends.by_url` and
 * `RedisBackend.__init__` / `_params_from_url` do, on top of `PyUrl` (the Python 3.11
 * `urllib.parse` pieces kombu's `url_to_parts` relies on):
 *
 * - `redis://` and `rediss://` (TLS); `redis+socket:///path` (a unix socket: `by_url` splits on `+`
 *   so the backend sees `socket:///path`); `redis+<x>://` is read as TCP, as Celery does. A bare
 *   `socket://`, `unix://` and any other scheme fail with Celery's message; the scheme is
 *   case-sensitive. `sentinel://` belongs to `@effect-celery/sentinel`. `valkey://` and
 *   `valkeys://` (and `valkey+socket://`) are aliases of `redis://` / `rediss://`: Valkey speaks
 *   the same protocol; the parsed `uri` names the Redis scheme.
 * - user / password / host / path are percent-decoded (`unquote`), the host is lower-cased, the
 *   database is the path (`//1` → 1, `/%2F3` → 3, `//` → `int('')` error); `virtual_host` only
 *   counts for sockets. Query parameters go through redis-py 4.3.4's parsers (`socket_timeout`
 *   float, `socket_keepalive` to_bool, `max_connections` int, …); unknown keys are kept, the last
 *   value wins, and every query key overrides the defaults. Invalid values fail with Python's own
 *   message (`could not convert string to float: 'abc'`).
 * - SSL: a `rediss://` URL (or `redis_backend_use_ssl`) needs `ssl_cert_reqs` in
 *   CERT_REQUIRED|CERT_OPTIONAL|CERT_NONE|required|optional|none (or 2/1/0); SSL parameters in a
 *   `redis://` URL's query are an error; `redis_backend_use_ssl` (`useSsl`) with a `redis://` URL
 *   makes the connection TLS, as Celery 5.7 does (#10313; 5.2–5.6 refused it with the
 *   scheme-mismatch error); OPTIONAL / NONE carry Celery's warnings, logged by `toConfig`.
 *
 * `parse` never throws: every failure is an `ImproperlyConfigured` whose message is Python's.
 * Options the client cannot use (`max_connections`, `retry_on_timeout`, `retry_on_error`, unknown
 * keys) are kept in `connparams` for inspection and otherwise ignored: one multiplexed
 * connection needs no pool, and retries belong to the caller's retry policy.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import { reprString } from "@effect-celery/core/PyJson"
import { PyError, pyFloat, pyInt, raise, stripChars, toBool, unquote, urlToParts, sanitize } from "./PyUrl.js"
import type { CertReqs, CredentialProvider, RedisConfig } from "./RedisConfig.js"
import {
  certReqsOf,
  DEFAULT_SOCKET_TIMEOUT,
  E_REDIS_SSL_CERT_REQS_MISSING_INVALID,
  W_REDIS_SSL_CERT_NONE,
  W_REDIS_SSL_CERT_OPTIONAL
} from "./RedisConfig.js"

export { E_REDIS_SSL_CERT_REQS_MISSING_INVALID, W_REDIS_SSL_CERT_NONE, W_REDIS_SSL_CERT_OPTIONAL }
/** The Python helpers, also here for existing callers; `PyUrl` is their home. */
export { parseQs, pyFloat, pyInt, quote, toBool, unquote } from "./PyUrl.js"

export const E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH =
  "\nSSL connection parameters have been provided but the specified URL scheme is redis://. A Redis SSL connection URL should use the scheme rediss://.\n"

/** A Python value in `connparams` (passwords stay redacted). */
export type PyValue = string | number | boolean | null | ReadonlyArray<string> | Redacted.Redacted

export type ConnectionClass = "Connection" | "SSLConnection" | "UnixDomainSocketConnection"

export interface ParsedUrl {
  /** The scheme the backend saw: "redis", "rediss", "socket" (from `redis+socket`), or another `redis+x`. */
  readonly scheme: string
  readonly connectionClass: ConnectionClass
  /** TCP host (undefined for a unix socket). */
  readonly host: string | undefined
  readonly port: number | undefined
  /** Unix socket path (`redis+socket://`). */
  readonly path: string | undefined
  readonly db: number
  readonly username: string | undefined
  readonly password: Redacted.Redacted | undefined
  /** `ssl_cert_reqs`, validated, when the connection is TLS. */
  readonly certReqs: CertReqs | undefined
  /** Celery's warnings to log (CERT_OPTIONAL / CERT_NONE). */
  readonly warnings: ReadonlyArray<string>
  /** Every connection parameter as Celery passes it to redis-py (without `connection_class`). */
  readonly connparams: Readonly<Record<string, PyValue>>
  /** Celery's `as_uri()`: password masked, query dropped. */
  readonly uri: string
}

/** Celery settings that are not in the URL (`redis_*`), used as `_params_from_url` defaults. */
export interface UrlOptions {
  /**
   * `redis_backend_use_ssl`: merged verbatim (`ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`, …);
   * a non-empty one makes the connection TLS with a `redis://` URL as with `rediss://` (Celery 5.7).
   */
  readonly useSsl?: Readonly<Record<string, unknown>> | undefined
  /** `redis_host` (default "localhost"). */
  readonly host?: string | undefined
  /** `redis_port` (default 6379). */
  readonly port?: number | undefined
  /** `redis_db`: only counts for sockets without `virtual_host` (a TCP URL's path always wins). */
  readonly db?: number | undefined
  /** `redis_username`. */
  readonly username?: string | undefined
  /** `redis_password`. */
  readonly password?: Redacted.Redacted | string | undefined
  /** `redis_socket_timeout` in seconds (default 120; `null` = none). */
  readonly socketTimeout?: number | null | undefined
  /** `redis_socket_connect_timeout` in seconds. */
  readonly socketConnectTimeout?: number | null | undefined
  /** `redis_socket_keepalive`. */
  readonly socketKeepalive?: boolean | undefined
  /** `redis_retry_on_timeout` (kept in connparams; retries belong to the retry policy). */
  readonly retryOnTimeout?: boolean | undefined
  /** `redis_max_connections` (kept in connparams; one multiplexed connection needs no pool). */
  readonly maxConnections?: number | undefined
  /** `redis_backend_health_check_interval` in seconds: PING this often on an idle connection. */
  readonly healthCheckInterval?: number | undefined
  /** `redis_client_name` (Celery ≥ 5.6): `CLIENT SETNAME`. */
  readonly clientName?: string | undefined
  /**
   * Not a Celery setting: connect while the layer is built (one attempt, no retry) and fail the
   * layer with its `ConnectionError` when the server cannot be reached. Default `false`: the
   * layer is built without a connection and the first call connects under the retry policy.
   */
  readonly failFast?: boolean | undefined
  /**
   * Celery 5.7's `additional_connection_errors` as error-reply prefixes: a reply starting with one
   * is retried like a lost connection (beyond LOADING, BUSY, READONLY, MASTERDOWN, TRYAGAIN,
   * CLUSTERDOWN, always retried).
   */
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
  /**
   * Celery 5.6's `redis_backend_credential_provider`: an Effect yielding the username/password,
   * run before every connection (see `RedisConfig.credentialProvider`); replaces the URL's.
   * Celery's `?credential_provider=module.Class` URL form names a Python class: ignored when this
   * option is given, refused (`ImproperlyConfigured`) otherwise.
   */
  readonly credentialProvider?: CredentialProvider | undefined
}

/** Celery's `redis_socket_timeout` default, in its unit (seconds). */
const DEFAULT_SOCKET_TIMEOUT_SECONDS = Duration.toSeconds(DEFAULT_SOCKET_TIMEOUT)

const SSL_KEYS = ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"] as const

type Parser = (value: string) => PyValue
const QUERY_PARSERS: Readonly<Record<string, Parser>> = {
  db: pyInt,
  socket_timeout: pyFloat,
  socket_connect_timeout: pyFloat,
  socket_keepalive: toBool,
  retry_on_timeout: toBool,
  retry_on_error: (value) => Array.from(value),
  max_connections: pyInt,
  health_check_interval: pyInt,
  ssl_check_hostname: toBool
}

const UNKNOWN_BACKEND = (name: string, detail: string) =>
  `Unknown result backend: ${reprString(name)}.  Did you spell that correctly? (${reprString(detail)})`

// Celery's backend aliases that are not Redis: valid for Celery, not for this client.
const OTHER_BACKENDS: ReadonlySet<string> = new Set([
  "amqp",
  "rpc",
  "cache",
  "mongodb",
  "db",
  "database",
  "elasticsearch",
  "cassandra",
  "couchbase",
  "couchdb",
  "cosmosdbsql",
  "riak",
  "file",
  "disabled",
  "consul",
  "dynamodb",
  "azureblockblob",
  "arangodb",
  "s3"
])

/** `by_url`: the backend name and the URL the backend sees. */
const byUrl = (url: string): string => {
  const sep = url.indexOf("://")
  // Never echo the URL: it may carry a password.
  if (sep === -1) return raise("Not a result backend URL: no '://' in it")
  const scheme = url.slice(0, sep)
  let backend = scheme
  let rest = url
  if (scheme.includes("+")) {
    const plus = url.indexOf("+")
    backend = url.slice(0, plus)
    rest = url.slice(plus + 1)
  }
  if (backend === "redis" || backend === "rediss") return rest
  // Valkey speaks the Redis protocol: its schemes are aliases (`valkey+socket://` is a socket).
  if (backend === "valkey" || backend === "valkeys") {
    return rest.startsWith(`${backend}://`)
      ? `${backend === "valkey" ? "redis" : "rediss"}${rest.slice(backend.length)}`
      : rest
  }
  if (backend === "sentinel") return raise("sentinel:// URLs are read by @effect-celery/sentinel (SentinelUrl)")
  if (backend === "socket") return raise(UNKNOWN_BACKEND(backend, "is a Python module, not a backend class."))
  if (OTHER_BACKENDS.has(backend)) return raise(`Result backend ${reprString(backend)} is not a Redis backend`)
  return raise(`No module named ${reprString(backend)}`)
}

const password = (value: Redacted.Redacted | string | undefined): Redacted.Redacted | undefined =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? value : Redacted.make(value)

const parseUnsafe = (url: string, options: UrlOptions): ParsedUrl => {
  const backendUrl = byUrl(url)
  // RedisBackend.__init__: the defaults.
  const conn = new Map<string, PyValue | undefined>()
  conn.set("host", options.host || "localhost")
  conn.set("port", options.port || 6379)
  conn.set("db", options.db || 0)
  conn.set("password", password(options.password) ?? null)
  conn.set("max_connections", options.maxConnections || null)
  conn.set(
    "socket_timeout",
    options.socketTimeout === undefined ? DEFAULT_SOCKET_TIMEOUT_SECONDS : options.socketTimeout
  )
  conn.set("retry_on_timeout", options.retryOnTimeout || false)
  conn.set("socket_connect_timeout", options.socketConnectTimeout ?? null)
  if (options.username) conn.set("username", options.username)
  if (options.healthCheckInterval) conn.set("health_check_interval", options.healthCheckInterval)
  if (options.socketKeepalive) conn.set("socket_keepalive", options.socketKeepalive)
  if (options.clientName !== undefined) conn.set("client_name", options.clientName)
  let connectionClass: ConnectionClass = "Connection"
  if (options.useSsl !== undefined && Object.keys(options.useSsl).length > 0) {
    for (const [k, v] of Object.entries(options.useSsl)) conn.set(k, toPyValue(v))
    connectionClass = "SSLConnection"
  }

  // _params_from_url
  const parts = urlToParts(backendUrl)
  const query = parts.query
  const virtualHost = query.get("virtual_host")
  query.delete("virtual_host")
  if (parts.host !== undefined) conn.set("host", parts.host)
  if (parts.port !== undefined) conn.set("port", parts.port)
  if (parts.username !== undefined) conn.set("username", parts.username)
  if (parts.password !== undefined) conn.set("password", Redacted.make(parts.password))
  if (virtualHost !== undefined) conn.set("db", virtualHost)
  if (parts.scheme === "socket") {
    if (parts.path === undefined) raise(`can only concatenate str (not "NoneType") to str`)
    connectionClass = "UnixDomainSocketConnection"
    conn.set("path", "/" + parts.path)
    conn.delete("host")
    conn.delete("port")
    conn.delete("socket_connect_timeout")
  } else {
    conn.set("db", parts.path ?? null)
  }
  // SSL parameters in a redis:// URL's query are the scheme-mismatch error. Those given by
  // `redis_backend_use_ssl` make the connection TLS whatever the scheme, as Celery 5.7 does (#10313)
  // and as the broker always did with `broker_use_ssl`; 5.2–5.6 refused them too.
  if (parts.scheme === "redis") {
    if (SSL_KEYS.some((k) => query.has(k) || (connectionClass !== "SSLConnection" && conn.has(k)))) {
      raise(E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH)
    }
  }
  if (parts.scheme === "rediss") {
    connectionClass = "SSLConnection"
    for (const k of SSL_KEYS) {
      const v = query.get(k)
      query.delete(k)
      if (v) conn.set(k, unquote(v))
    }
  }
  const rawDb = conn.get("db")
  const db = rawDb === undefined || rawDb === null || rawDb === 0 || rawDb === "" || rawDb === false ? 0 : rawDb
  conn.set(
    "db",
    typeof db === "string" ? pyInt(stripChars(db, "/")) : typeof db === "number" ? Math.trunc(db) : pyInt(textOf(db))
  )
  for (const [k, v] of query) {
    const parser = QUERY_PARSERS[k]
    conn.set(k, parser !== undefined ? parser(v) : k === "password" ? Redacted.make(v) : v)
  }

  // RedisBackend.__init__: ssl_cert_reqs validation for SSL connections.
  let certReqs: CertReqs | undefined
  const warnings: Array<string> = []
  if (connectionClass === "SSLConnection") {
    const raw = conn.has("ssl_cert_reqs") ? conn.get("ssl_cert_reqs") : "MISSING"
    certReqs = certReqsOf(raw)
    if (certReqs === undefined) raise(E_REDIS_SSL_CERT_REQS_MISSING_INVALID)
    if (certReqs === "optional") warnings.push(W_REDIS_SSL_CERT_OPTIONAL)
    if (certReqs === "none") warnings.push(W_REDIS_SSL_CERT_NONE)
    conn.set("ssl_cert_reqs", certReqs === "required" ? 2 : certReqs === "optional" ? 1 : 0)
  }

  const connparams: Record<string, PyValue> = {}
  for (const [k, v] of conn) if (v !== undefined) connparams[k] = v
  const host = conn.get("host")
  const port = conn.get("port")
  const user = conn.get("username")
  const pw = conn.get("password")
  const path = conn.get("path")
  return {
    scheme: parts.scheme,
    connectionClass,
    host:
      connectionClass === "UnixDomainSocketConnection"
        ? undefined
        : typeof host === "string"
          ? host
          : host === undefined
            ? "localhost"
            : textOf(host),
    port:
      connectionClass === "UnixDomainSocketConnection"
        ? undefined
        : typeof port === "number"
          ? port
          : port === undefined
            ? 6379
            : pyInt(textOf(port)),
    path: connectionClass === "UnixDomainSocketConnection" && typeof path === "string" ? path : undefined,
    db: conn.get("db") as number,
    username: typeof user === "string" && user !== "" ? user : undefined,
    password: Redacted.isRedacted(pw) ? pw : typeof pw === "string" ? Redacted.make(pw) : undefined,
    certReqs,
    warnings,
    connparams,
    uri: sanitize(urlToParts(backendUrl))
  }
}

/** A value as Python's `str()` would show it, never revealing a secret. */
const textOf = (v: PyValue): string =>
  v === null
    ? "None"
    : Redacted.isRedacted(v)
      ? "**"
      : typeof v === "boolean"
        ? v
          ? "True"
          : "False"
        : Array.isArray(v)
          ? `[${v.map(reprString).join(", ")}]`
          : String(v)

const toPyValue = (v: unknown): PyValue | undefined => {
  if (v === undefined) return undefined
  if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v
  if (Redacted.isRedacted(v)) return Redacted.make(String(Redacted.value(v)))
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)))
  return JSON.stringify(v)
}

/**
 * Parse a Celery result-backend URL as Celery 5.2.6 does (never throws). `options` are the
 * `redis_*` settings and `redis_backend_use_ssl`.
 */
export const parse = (url: string, options: UrlOptions = {}): Either.Either<ParsedUrl, ImproperlyConfigured> => {
  try {
    return Either.right(parseUnsafe(url, options))
  } catch (cause) {
    if (cause instanceof PyError) return Either.left(new ImproperlyConfigured({ message: cause.message }))
    return Either.left(new ImproperlyConfigured({ message: `Invalid result backend URL: ${String(cause)}`, cause }))
  }
}

/** Celery's `as_uri()` of a parsed URL: password masked, query dropped. */
export const asUri = (parsed: ParsedUrl): string => parsed.uri

const seconds = (v: PyValue | undefined): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v > 0 ? v * 1000 : undefined

const boolOf = (v: PyValue | undefined): boolean | undefined =>
  v === undefined || v === null
    ? undefined
    : typeof v === "string"
      ? (toBool(v) ?? undefined)
      : typeof v === "boolean"
        ? v
        : Boolean(v)

const stringOf = (v: PyValue | undefined): string | undefined => (typeof v === "string" && v !== "" ? v : undefined)

/**
 * The `RedisConfig` a parsed URL stands for. Timeouts: `socket_timeout` bounds every command (0 or
 * none = unbounded); the connect bound is `socket_connect_timeout`, else a `socket_timeout` that
 * was set explicitly (URL or option), as redis-py does, else 5 s (redis-py would wait the default
 * 120 s `socket_timeout`: failing fast lets the retry policy work). `health_check_interval` becomes
 * a periodic PING.
 */
export const configOf = (parsed: ParsedUrl, options: UrlOptions = {}): RedisConfig => {
  const p = parsed.connparams
  const socketTimeout = seconds(p["socket_timeout"])
  const explicitSocketTimeout =
    "socket_timeout" in p &&
    (options.socketTimeout !== undefined || p["socket_timeout"] !== DEFAULT_SOCKET_TIMEOUT_SECONDS)
  const connectTimeout = seconds(p["socket_connect_timeout"]) ?? (explicitSocketTimeout ? socketTimeout : undefined)
  const keepalive = boolOf(p["socket_keepalive"])
  const clientName = stringOf(p["client_name"])
  const healthCheck = seconds(p["health_check_interval"])
  const tls =
    parsed.connectionClass === "SSLConnection"
      ? {
          certReqs: parsed.certReqs ?? "required",
          ...(stringOf(p["ssl_ca_certs"]) !== undefined ? { caFile: stringOf(p["ssl_ca_certs"]) } : {}),
          ...(stringOf(p["ssl_certfile"]) !== undefined ? { certFile: stringOf(p["ssl_certfile"]) } : {}),
          ...(stringOf(p["ssl_keyfile"]) !== undefined ? { keyFile: stringOf(p["ssl_keyfile"]) } : {}),
          ...(boolOf(p["ssl_check_hostname"]) !== undefined ? { checkHostname: boolOf(p["ssl_check_hostname"]) } : {})
        }
      : undefined
  return {
    ...(parsed.path !== undefined ? { path: parsed.path } : { host: parsed.host, port: parsed.port }),
    db: parsed.db,
    ...(parsed.username !== undefined ? { username: parsed.username } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    socketTimeout: socketTimeout !== undefined ? socketTimeout : null,
    ...(connectTimeout !== undefined ? { connectTimeout } : {}),
    ...(keepalive !== undefined ? { keepAlive: keepalive } : {}),
    ...(clientName !== undefined ? { clientName } : {}),
    ...(healthCheck !== undefined ? { healthCheckInterval: healthCheck } : {}),
    ...(options.failFast !== undefined ? { failFast: options.failFast } : {}),
    ...(options.additionalConnectionErrors !== undefined
      ? { additionalConnectionErrors: options.additionalConnectionErrors }
      : {}),
    ...(options.credentialProvider !== undefined ? { credentialProvider: options.credentialProvider } : {}),
    uri: parsed.uri
  }
}

/**
 * Parse and build the `RedisConfig`. Celery's SSL warnings (`parsed.warnings`) are logged once
 * when the TLS options are built (`RedisConfig.clientOptions`), so not here.
 */
export const toConfig = (
  url: string | Redacted.Redacted,
  options: UrlOptions = {}
): Effect.Effect<RedisConfig, ImproperlyConfigured> =>
  Effect.flatMap(parse(Redacted.isRedacted(url) ? Redacted.value(url) : url, options), (parsed) =>
    // Celery's `?credential_provider=module.Class` names a Python class: connecting without the
    // provider it stands for would only fail later, as an Auth error far from the cause.
    "credential_provider" in parsed.connparams && options.credentialProvider === undefined
      ? Effect.fail(
          new ImproperlyConfigured({
            message:
              "credential_provider in the URL names a Python class; give the provider as the credentialProvider option"
          })
        )
      : Effect.succeed(configOf(parsed, options))
  )
