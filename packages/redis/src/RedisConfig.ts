/**
 * How to reach one Redis server, and its translation to node-redis options.
 *
 * TLS follows redis-py's `SSLConnection` (what Celery uses), mapped onto Node's `tls`:
 * - `certReqs: "required"` (CERT_REQUIRED): the server chain is verified against the system roots
 *   plus `caFile`/`ca` (Python's `create_default_context()` + `load_verify_locations`).
 * - `"optional"` (CERT_OPTIONAL): in client mode OpenSSL treats it exactly like CERT_REQUIRED (the
 *   server always presents a certificate, and a bad one is rejected), so it maps to the same
 *   verification. Celery still logs its warning.
 * - `"none"` (CERT_NONE): no verification (`rejectUnauthorized: false`).
 * - `checkHostname` (`ssl_check_hostname`, redis-py default False): the host name is checked only
 *   when true; otherwise `checkServerIdentity` accepts any name, as Python does.
 * - `certFile`/`keyFile` (`ssl_certfile`/`ssl_keyfile`) present a client certificate.
 * Files are read with `node:fs` when the options are built (so the package needs no platform
 * layer); an unreadable file is `ImproperlyConfigured`.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { readFile } from "node:fs/promises"
import * as Tls from "node:tls"
import { ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import type { createClient } from "redis"

/** The node-redis options `createClient` accepts. */
export type NodeRedisOptions = NonNullable<Parameters<typeof createClient>[0]>

/** `ssl_cert_reqs`, normalized. */
export type CertReqs = "required" | "optional" | "none"

export interface TlsConfig {
  /** `ssl_cert_reqs`. Default "required". */
  readonly certReqs?: CertReqs | undefined
  /** `ssl_ca_certs`: a PEM file of trusted CAs, added to the system roots. */
  readonly caFile?: string | undefined
  /** Trusted CAs as PEM text (instead of, or in addition to, `caFile`). */
  readonly ca?: string | undefined
  /** `ssl_certfile`: client certificate chain (PEM file). */
  readonly certFile?: string | undefined
  /** `ssl_keyfile`: client private key (PEM file). */
  readonly keyFile?: string | undefined
  /** Client certificate as PEM text. */
  readonly cert?: string | undefined
  /** Client private key as PEM text. */
  readonly key?: Redacted.Redacted | undefined
  /** `ssl_check_hostname`: verify the server name too. Default false (redis-py). */
  readonly checkHostname?: boolean | undefined
  /** SNI / name to verify, when it differs from `host`. */
  readonly servername?: string | undefined
}

export interface RedisConfig {
  /** Default "localhost". Ignored when `path` is set. */
  readonly host?: string | undefined
  /** Default 6379. Ignored when `path` is set. */
  readonly port?: number | undefined
  /** A unix socket path (Celery's `redis+socket://`). */
  readonly path?: string | undefined
  /** Database number. Default 0. */
  readonly db?: number | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** TLS (`rediss://`). `true` = defaults (verify against system roots). */
  readonly tls?: TlsConfig | boolean | undefined
  /**
   * `socket_timeout`: a command with no reply for this long fails with `ConnectionError("Timeout")`
   * and the connection is replaced. Default 120 s (Celery's `redis_socket_timeout`); `null` = none.
   */
  readonly socketTimeout?: Duration.DurationInput | null | undefined
  /** `socket_connect_timeout`: bound on connect + handshake + AUTH/SELECT. Default 5 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** TCP keep-alive: `false` disables, a duration sets the initial delay. Default node-redis (5 s). */
  readonly keepAlive?: boolean | Duration.DurationInput | undefined
  /** `health_check_interval`: PING the connection this often (node-redis `pingInterval`). */
  readonly healthCheckInterval?: Duration.DurationInput | undefined
  /** `CLIENT SETNAME` on every connection. */
  readonly clientName?: string | undefined
  /** How the server is shown (`RedisClient.uri`); default built like Celery's `as_uri()`. */
  readonly uri?: string | undefined
  /**
   * Connect while the layer is built (one attempt, no retry) and fail the layer when the server
   * cannot be reached. Default `false`: the first call connects, under the retry policy.
   */
  readonly failFast?: boolean | undefined
  /**
   * Error-reply prefixes retried like a lost connection, beyond LOADING, BUSY, READONLY,
   * MASTERDOWN, TRYAGAIN and CLUSTERDOWN (Celery 5.7's `additional_connection_errors`).
   */
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
  /**
   * Celery 5.6's `redis_backend_credential_provider`: run before every connection is opened (the
   * first, and every reconnect, command and Pub/Sub connections alike), so a rotating token (cloud
   * IAM auth) is fetched afresh; its username/password replace `username`/`password`, as Celery
   * drops those. The password stays `Redacted` and is never logged or shown in `uri`. A failure
   * fails that connect: a `ConnectionError` as given (`"Auth"` is not retried), anything else (a
   * defect too) as `ConnectionError("Connect")`, retried under the retry policy like an unreachable
   * server. Bounded by `connectTimeout`: a provider that never answers is `ConnectionError("Timeout")`.
   */
  readonly credentialProvider?: CredentialProvider | undefined
}

export const DEFAULT_SOCKET_TIMEOUT: Duration.Duration = Duration.seconds(120)
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)

/** What a credential provider yields (redis-py's `CredentialProvider.get_credentials()`). */
export interface Credentials {
  /** The ACL user; none for the `default` user (plain `AUTH <password>`). */
  readonly username?: string | undefined
  readonly password: Redacted.Redacted
}

/** Asked for credentials before every connection (see `RedisConfig.credentialProvider`). */
export type CredentialProvider = Effect.Effect<Credentials, unknown>

/**
 * Run the provider for one connection: its credentials in `options` (in place of any
 * username/password there), its failure as a `ConnectionError` naming `target` but not the cause's
 * text, which may carry what the provider was given. Bounded by `timeout` (the connect timeout:
 * a provider that never answers is `ConnectionError("Timeout")`), also inside an uninterruptible
 * region; a defect of the provider is a failure like any other.
 */
export const withCredentials = (
  options: NodeRedisOptions,
  provider: CredentialProvider,
  target: string,
  timeout: Duration.DurationInput = DEFAULT_CONNECT_TIMEOUT
): Effect.Effect<NodeRedisOptions, ConnectionError> =>
  provider.pipe(
    Effect.interruptible,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ConnectionError({
          reason: "Timeout",
          message: `${target}: the credential provider did not answer within ${Duration.format(timeout)}`
        })
    }),
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const error = Cause.squash(cause)
      return Effect.fail(
        error instanceof ConnectionError
          ? error
          : new ConnectionError({
              reason: "Connect",
              message: `${target}: the credential provider failed`,
              cause: error
            })
      )
    }),
    Effect.map(({ password, username }) => {
      const { password: _password, username: _username, ...rest } = options
      return {
        ...rest,
        ...(username !== undefined && username !== "" ? { username } : {}),
        password: Redacted.value(password)
      }
    })
  )

export const W_REDIS_SSL_CERT_OPTIONAL =
  "\nSetting ssl_cert_reqs=CERT_OPTIONAL when connecting to redis means that celery might not validate the identity of the redis broker when connecting. This leaves you vulnerable to man in the middle attacks.\n"
export const W_REDIS_SSL_CERT_NONE =
  "\nSetting ssl_cert_reqs=CERT_NONE when connecting to redis means that celery will not validate the identity of the redis broker when connecting. This leaves you vulnerable to man in the middle attacks.\n"

/** Celery's message for a missing or invalid `ssl_cert_reqs` (with `rediss://` or `redis_backend_use_ssl`). */
export const E_REDIS_SSL_CERT_REQS_MISSING_INVALID =
  "\nA rediss:// URL must have parameter ssl_cert_reqs and this must be set to CERT_REQUIRED, CERT_OPTIONAL, or CERT_NONE\n"

const CERT_REQS: Readonly<Record<string, CertReqs>> = {
  CERT_REQUIRED: "required",
  CERT_OPTIONAL: "optional",
  CERT_NONE: "none",
  required: "required",
  optional: "optional",
  none: "none"
}
/** Python's `ssl.CERT_NONE`, `CERT_OPTIONAL`, `CERT_REQUIRED` are 0, 1, 2 (and `True == 1`). */
const CERT_REQS_INT: ReadonlyArray<CertReqs> = ["none", "optional", "required"]

/**
 * An `ssl_cert_reqs` value as Celery and redis-py accept it: a name (`CERT_REQUIRED`, or redis-py's
 * `required`, …) or Python's `ssl` constant (2 / 1 / 0); undefined for anything else.
 */
export const certReqsOf = (raw: unknown): CertReqs | undefined =>
  typeof raw === "string"
    ? CERT_REQS[raw]
    : typeof raw === "number" || typeof raw === "boolean"
      ? CERT_REQS_INT[Number(raw)]
      : undefined

const tlsConfigOf = (config: RedisConfig): TlsConfig | undefined =>
  config.tls === true ? {} : config.tls === false || config.tls === undefined ? undefined : config.tls

/** The selected database. */
export const dbOf = (config: RedisConfig): number => config.db ?? 0

/** What names a server in a message (see `serverUri`). */
export interface ServerName {
  /** "redis", "rediss" or "sentinel"; ignored for a unix socket (`socket://`). */
  readonly scheme: string
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** A unix socket path. */
  readonly path?: string | undefined
  readonly username?: string | undefined
  /** Whether a password is used: shown as `**`, never itself. */
  readonly password: boolean
  readonly db?: number | undefined
}

/**
 * The one way these packages name a server in messages and log lines: Celery's `as_uri()` (kombu's
 * `maybe_sanitize_url`), the password masked as `**`, no query: `redis://:**@127.0.0.1:6379/0`,
 * `rediss://user:**@host:6380/2`, `socket:///run/redis.sock` (Celery shows `redis+socket://` URLs
 * so), `sentinel://:**@127.0.0.1:26379/0`. An IPv6 host is bracketed.
 */
export const serverUri = (name: ServerName): string => {
  const user = name.username !== undefined && name.username !== "" ? encodeURIComponent(name.username) : ""
  const auth = user !== "" || name.password ? `${user}${name.password ? ":**" : ""}@` : ""
  if (name.path !== undefined) return `socket://${auth}${name.path}`
  const host = name.host ?? "localhost"
  const db = name.db === undefined ? "" : `/${name.db}`
  return `${name.scheme}://${auth}${formatHost(host)}:${name.port ?? 6379}${db}`
}

const formatHost = (host: string): string => (host.includes(":") ? `[${host}]` : host)

/** The server of `config` as `serverUri` names it. */
const serverNameOf = (config: RedisConfig): ServerName => ({
  scheme: tlsConfigOf(config) !== undefined ? "rediss" : "redis",
  host: config.host,
  port: config.port,
  path: config.path,
  username: config.username,
  password: config.password !== undefined,
  db: dbOf(config)
})

/**
 * Celery's `as_uri()` for a config (`config.uri` when given, e.g. the URL it was parsed from,
 * sanitized): how `RedisClient.uri`, every error message and every log line name the server.
 */
export const displayUri = (config: RedisConfig): string => config.uri ?? serverUri(serverNameOf(config))

/** Where `config` points, as OpenTelemetry's `server.address` / `server.port` (a unix socket: its path, no port). */
export const serverOf = (config: RedisConfig): { readonly address: string; readonly port?: number | undefined } =>
  config.path !== undefined
    ? { address: config.path }
    : { address: config.host ?? "localhost", port: config.port ?? 6379 }

/** How messages name the server of `config`: `displayUri` (one format everywhere). */
export const targetOf = (config: RedisConfig): string => displayUri(config)

/**
 * The longest delay Node's timers take: 2^31−1 ms (about 24.8 days). A longer one (a socket
 * timeout, a ping interval) fires after 1 ms instead, so longer durations are clamped to it:
 * in effect "never", as Celery treats them.
 */
export const MAX_TIMER_MILLIS = 2_147_483_647

const clampTimer = (millis: number): number =>
  millis > MAX_TIMER_MILLIS || !Number.isFinite(millis) ? MAX_TIMER_MILLIS : millis

/** The socket timeout in milliseconds (at most `MAX_TIMER_MILLIS`), or undefined for none. */
export const socketTimeoutMillis = (config: RedisConfig): number | undefined =>
  config.socketTimeout === null
    ? undefined
    : clampTimer(
        Duration.toMillis(
          config.socketTimeout === undefined ? DEFAULT_SOCKET_TIMEOUT : Duration.decode(config.socketTimeout)
        )
      )

/** The connect timeout in milliseconds (at most `MAX_TIMER_MILLIS`). */
export const connectTimeoutMillis = (config: RedisConfig): number =>
  clampTimer(
    Duration.toMillis(
      config.connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT : Duration.decode(config.connectTimeout)
    )
  )

/**
 * `health_check_interval` in milliseconds, at most `MAX_TIMER_MILLIS`; undefined when unset or not
 * positive (0 disables it, as in redis-py).
 */
export const healthCheckMillis = (config: RedisConfig): number | undefined => {
  if (config.healthCheckInterval === undefined) return undefined
  const millis = Math.round(Duration.toMillis(Duration.decode(config.healthCheckInterval)))
  return millis > 0 ? clampTimer(millis) : undefined
}

/** A warning for each duration of `config` beyond what Node's timers take (clamped). */
const warnClamped = (config: RedisConfig): Effect.Effect<void> =>
  Effect.suspend(() => {
    const over: Array<string> = []
    const check = (name: string, input: Duration.DurationInput | null | undefined) => {
      if (input === undefined || input === null) return
      const millis = Duration.toMillis(Duration.decode(input))
      if (millis > MAX_TIMER_MILLIS) over.push(`${name} (${millis / 1000} s)`)
    }
    check("health_check_interval", config.healthCheckInterval)
    check("socket_timeout", config.socketTimeout)
    check("socket_connect_timeout", config.connectTimeout)
    return over.length === 0
      ? Effect.void
      : Effect.logWarning(
          `${over.join(", ")} exceeds the longest timer Node supports; clamped to ${MAX_TIMER_MILLIS / 1000} s`
        )
  })

const keepAliveOf = (config: RedisConfig): number | false | undefined => {
  const k = config.keepAlive
  if (k === undefined) return undefined
  if (k === false) return false
  if (k === true) return 5000
  return Math.max(1, Math.round(Duration.toMillis(Duration.decode(k))))
}

const readPem = (what: string, path: string) =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (cause) =>
      new ImproperlyConfigured({
        message: `Cannot read ${what} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

/** Celery's warnings for weak `ssl_cert_reqs` (logged when the options are built). */
export const warnCertReqs = (certReqs: CertReqs): Effect.Effect<void> =>
  certReqs === "optional"
    ? Effect.logWarning(W_REDIS_SSL_CERT_OPTIONAL)
    : certReqs === "none"
      ? Effect.logWarning(W_REDIS_SSL_CERT_NONE)
      : Effect.void

const acceptAnyName = (): undefined => undefined

/** Node `tls.connect` options for a TLS config (the PEM files read). */
export const tlsOptions = (tls: TlsConfig): Effect.Effect<Tls.ConnectionOptions, ImproperlyConfigured> =>
  Effect.gen(function* () {
    const certReqs = tls.certReqs ?? "required"
    yield* warnCertReqs(certReqs)
    const caFile = tls.caFile !== undefined ? yield* readPem("ssl_ca_certs", tls.caFile) : undefined
    const certFile = tls.certFile !== undefined ? yield* readPem("ssl_certfile", tls.certFile) : undefined
    // Python's load_cert_chain(certfile) accepts a key inside the cert file when no keyfile is given.
    const keyFile = tls.keyFile !== undefined ? yield* readPem("ssl_keyfile", tls.keyFile) : undefined
    const extraCa = [caFile, tls.ca].filter((s): s is string => s !== undefined)
    const cert = certFile ?? tls.cert
    const key = keyFile ?? (tls.key !== undefined ? Redacted.value(tls.key) : certFile)
    const options: Tls.ConnectionOptions = {
      rejectUnauthorized: certReqs !== "none",
      ...(extraCa.length > 0 ? { ca: [...Tls.rootCertificates, ...extraCa] } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(cert !== undefined && key !== undefined ? { key } : {}),
      ...(tls.checkHostname === true ? {} : { checkServerIdentity: acceptAnyName }),
      ...(tls.servername !== undefined ? { servername: tls.servername } : {})
    }
    return options
  })

/**
 * node-redis options for `config` (TLS files read). `RedisConnection` adds what every client is
 * forced to have (no reconnect strategy, no offline queue). Exported so Sentinel can build
 * data-node options (TLS included) and override host/port.
 */
export const clientOptions = (config: RedisConfig): Effect.Effect<NodeRedisOptions, ImproperlyConfigured> =>
  Effect.gen(function* () {
    yield* warnClamped(config)
    const pingInterval = healthCheckMillis(config)
    const connectTimeout = connectTimeoutMillis(config)
    const keepAlive = keepAliveOf(config)
    const common = {
      connectTimeout,
      ...(keepAlive !== undefined ? { keepAlive } : {})
    }
    const tls = tlsConfigOf(config)
    const host = config.host ?? "localhost"
    const port = config.port ?? 6379
    if (tls !== undefined && config.path !== undefined) {
      return yield* new ImproperlyConfigured({ message: "TLS over a unix socket is not supported" })
    }
    const socket: NodeRedisOptions["socket"] =
      config.path !== undefined
        ? { ...common, path: config.path }
        : tls !== undefined
          ? { ...common, host, port, tls: true, ...(yield* tlsOptions(tls)) }
          : { ...common, host, port }
    const db = dbOf(config)
    const options: NodeRedisOptions = {
      socket,
      ...(db !== 0 ? { database: db } : {}),
      ...(config.username !== undefined && config.username !== "" ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: Redacted.value(config.password) } : {}),
      ...(config.clientName !== undefined ? { name: config.clientName } : {}),
      ...(pingInterval !== undefined ? { pingInterval } : {})
    }
    return options
  })
