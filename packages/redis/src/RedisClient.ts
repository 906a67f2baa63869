/**
 * The Redis connection service shared by the backend, the consumer and Sentinel.
 *
 * `make` holds one shared command connection (node-redis pipelines what many fibers send in the
 * same tick) and replaces it after a connection-level failure: the failing call fails with a typed
 * `ConnectionError`, the next call connects again (one reconnect in flight for all callers).
 * Nothing is retried here: callers apply Celery's retry policy. How a connection is opened is the
 * `connector`'s business, so Sentinel plugs its own master discovery in.
 *
 * This module is the service, its wiring and its layers; the connection manager (with the
 * `socket_timeout` watchdog) is `internal/connection.ts`, cross-fiber batching
 * `internal/batcher.ts`, the driver adapter `RedisConnection`.
 *
 * Layers:
 * - `layer(config)`: a `RedisConfig` (host/port or unix socket, db, ACL user, TLS…).
 * - `layerUrl(url, options)`: a Celery `result_backend` URL (`redis://`, `rediss://`,
 *   `redis+socket://`), with `redis_backend_use_ssl` and the `redis_*` settings as options.
 * - `layerConfig()`: the same from the environment (see `urlConfig` for the variables).
 * TLS files are read with `node:fs` when the layer is built.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { CommandError, ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import * as Batcher from "./internal/batcher.js"
import * as Connection from "./internal/connection.js"
import type { NodeRedis } from "./RedisConnection.js"
import { connector } from "./RedisConnection.js"
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
export type Batched<I, R, O = R, E = never> = Batcher.Batched<I, R, O, E>

/**
 * Most keys in one MGET, coalesced `get`s and `getMany` alike (bounds the request and the reply;
 * Celery sends all of them at once). For coalesced gets a thousand keys in one MGET was measured
 * cheaper than two halves (less client CPU); one long read is sent in halves instead (see
 * `RedisResultBackend`), where the latency of the one call is what counts.
 */
export const MGET_CHUNK = 1024

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
    const connections = yield* Connection.make(options)
    const batched = Batcher.make(connections)

    const getWith = <O, E>(outcome: (value: string | null, key: string) => Either.Either<O, E>) =>
      batched<string, string | null, O, E>({
        command: "GET",
        maxBatch: MGET_CHUNK,
        one: (c, key) => c.get(key),
        many: (c, keys) => c.mGet(keys),
        outcome
      })
    const get = getWith(Either.right)

    return RedisClient.of({
      [TypeId]: TypeId,
      uri: options.uri,
      db: options.db,
      healthCheckInterval: options.healthCheckInterval === undefined ? undefined : Duration.decode(options.healthCheckInterval),
      execute: connections.execute,
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
