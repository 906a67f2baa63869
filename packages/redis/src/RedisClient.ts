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
import { createHash } from "node:crypto"
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
import * as Driver from "./internal/driver.js"
import type * as RedisConnection from "./RedisConnection.js"
import type { NodeRedis } from "./RedisConnection.js"
import { connector } from "./RedisConnection.js"
import * as RedisConfig from "./RedisConfig.js"
import * as RedisUrl from "./RedisUrl.js"

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
   * Any command, as its argument list (`["SET", key, value]`), on the shared command connection.
   * Commands that any fibers send in the same tick are pipelined in one write, so many fibers
   * share the connection cheaply. A connection-level failure fails with `ConnectionError` and
   * drops the connection, so the next call reconnects (re-discovering the master under Sentinel);
   * an error reply fails with `CommandError` (a `READONLY` reply is a `ConnectionError` with reason
   * "ReadOnly"; LOADING, BUSY, MASTERDOWN, TRYAGAIN and CLUSTERDOWN are `ConnectionError("Busy")`).
   * Nothing is retried here: callers apply the retry policy. Every operation below fails this way.
   */
  readonly command: (args: ReadonlyArray<string>) => Effect.Effect<Reply, ConnectionError | CommandError>
  /**
   * Several commands in one write, their replies in order; the first error reply fails the call
   * (the other commands were sent all the same).
   */
  readonly commands: (
    commands: ReadonlyArray<ReadonlyArray<string>>
  ) => Effect.Effect<ReadonlyArray<Reply>, ConnectionError | CommandError>
  /**
   * `GET key`. The GETs that any fibers issue in the same tick go out as one MGET (chunks of
   * `MGET_CHUNK`): one command for many reads. Unlike GET, MGET reads a key holding a non-string as
   * missing; an error reply to a batch (an ACL denial, say) sends each of its keys again as its own
   * GET, so it fails only its own caller.
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
   * The values of any number of keys, in order (null for a missing key or one holding a
   * non-string). A long list goes as two or more MGETs pipelined in one write, at most
   * `MGET_CHUNK` keys each: the server answers the first part while it still reads the second.
   * No keys: no command.
   */
  readonly mget: (
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string | null>, ConnectionError | CommandError>
  /** `DEL keys…`: how many existed (no keys: no command, 0). */
  readonly del: (keys: ReadonlyArray<string>) => Effect.Effect<number, ConnectionError | CommandError>
  /** `INCRBY key increment`: the new value. */
  readonly incrBy: (key: string, increment: number) => Effect.Effect<number, ConnectionError | CommandError>
  /** `PUBLISH channel message`: how many subscribers received it. */
  readonly publish: (channel: string, message: string) => Effect.Effect<number, ConnectionError | CommandError>
  /**
   * A Lua script by its SHA1 (EVALSHA), loaded and run again when the server does not know it
   * (NOSCRIPT: a fresh, restarted or flushed server). The script's error replies nested in its
   * reply come back as `Error`s in the array.
   */
  readonly runScript: (
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>
  ) => Effect.Effect<Reply, ConnectionError | CommandError>
  /**
   * A command many callers share: the items that fibers submit in the same tick go out as one
   * `many` call (at most `maxBatch` items each), a lone item as `one`, and each caller is resumed
   * with the `outcome` of its own reply. An error reply to a whole batch sends each of its items
   * again through `one`, so it fails only its own caller; a caller interrupted before its batch
   * is sent is withdrawn (its item is not sent). `get` is one of these.
   */
  readonly batched: <I, R, O = R, E = never>(
    spec: Batched<I, R, O, E>
  ) => (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>
  /**
   * @internal The driver underneath (raw node-redis access for this package's subscriber, which
   * needs a dedicated Pub/Sub connection). Not part of the public API: it changes with the driver.
   */
  readonly [Driver.DriverId]: Driver.Driver
}

/**
 * A reply as the client hands it back: bulk and simple strings as `string`, integers as `number`,
 * nil as `null`, arrays as arrays; an error reply nested in an array (a script's `redis.pcall`, an
 * EXEC) as an `Error` in place. (RESP2, strings decoded as UTF-8.)
 */
export type Reply = string | number | null | Error | ReadonlyArray<Reply>

/** A Lua script: its source and the SHA1 of the source (EVALSHA's name for it); see `script`. */
export interface Script {
  readonly source: string
  readonly sha: string
  /**
   * Set when the script treats its keys one by one: after `perKey` shared arguments, KEYS[i] goes
   * with ARGV[perKey + i], and the reply is an array of one entry per key. A cluster client then
   * splits a call whose keys span hash slots into one call per slot (`RedisClusterBackend`).
   */
  readonly perKey?: number | undefined
}

/** A `Script` for `source` (`perKey`: see `Script.perKey`). */
export const script = (source: string, perKey?: number): Script => ({
  source,
  sha: createHash("sha1").update(source).digest("hex"),
  ...(perKey !== undefined ? { perKey } : {})
})

/**
 * What a `batched` description sends through: the commands of one connection, as promises, for
 * the loop that sends a batch (an Effect per item was measured to cost the batching its gain). A
 * rejection is typed by the client as its commands' failures are.
 */
export interface Commands {
  readonly command: (args: ReadonlyArray<string>) => Promise<Reply>
  readonly get: (key: string) => Promise<string | null>
  readonly mget: (keys: ReadonlyArray<string>) => Promise<ReadonlyArray<string | null>>
  readonly runScript: (script: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => Promise<Reply>
}

/** How `RedisClient.batched` sends a coalesced command. */
export interface Batched<I, R, O = R, E = never> {
  /** Names the command in errors. */
  readonly command: string
  /** Most items in one `many` call (bounds the request, the reply and the server's time on it). */
  readonly maxBatch: number
  /** One item alone (a batch of one, and each item again after an error reply to its batch). */
  readonly one: (redis: Commands, item: I) => Promise<R>
  /** Several items: one reply per item, in order; an `Error` (a nested error reply) fails only its item. */
  readonly many: (redis: Commands, items: Array<I>) => Promise<ReadonlyArray<R | Error>>
  /**
   * The caller's outcome from its item's reply, computed in the loop that hands a batch out rather
   * than by each resumed fiber, where decoding task metas was measured slower. A throw is a defect
   * of that caller alone.
   */
  readonly outcome: (reply: R, item: I) => Either.Either<O, E>
  /** What a caller whose item got no reply of its own resumes with (see `Recover`). */
  readonly recover?: Recover<I, O, E> | undefined
}

/**
 * What a caller of a batched command resumes with when its item got no reply of its own: given
 * `attempt` (its failure, or its item sent alone after an error reply to the batch or with no
 * connection up), the item, and `again`, which submits an item once more without this recovery
 * (what a retry runs). Made only for such a caller, so a caller whose reply came pays nothing for
 * it (an `Effect.catchIf` around every call was a tenth of a store's heap).
 */
export type Recover<I, O, E> = (
  attempt: Effect.Effect<O, E | ConnectionError | CommandError>,
  item: I,
  again: (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>
) => Effect.Effect<O, E | ConnectionError | CommandError>

/**
 * Most keys in one MGET, coalesced `get`s and `getMany` alike (bounds the request and the reply;
 * Celery sends all of them at once). For coalesced gets a thousand keys in one MGET was measured
 * cheaper than two halves (less client CPU); one long read is sent in halves instead (see
 * `RedisResultBackend`), where the latency of the one call is what counts.
 */
export const MGET_CHUNK = 1024

/** A `mget` of fewer than twice this many keys goes as one MGET. */
const MGET_MIN_PART = 256

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
   * Where `connector` connects, for the `RedisClient.connect` span's `server.address` and
   * `server.port` (a unix socket: its path, no port), known even when the connect fails. Leave it
   * out when the connector finds its server itself (Sentinel): the span then carries the server of
   * the connection made, and nothing when none is made.
   */
  readonly server?: RedisConnection.Server | undefined
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

    const { execute } = connections

    const getWith = <O, E>(outcome: (value: string | null, key: string) => Either.Either<O, E>) =>
      batched<string, string | null, O, E>({
        command: "GET",
        maxBatch: MGET_CHUNK,
        one: (c, key) => c.get(key),
        many: (c, keys) => c.mGet(keys),
        outcome
      })
    const get = getWith(Either.right)

    const mget = (
      keys: ReadonlyArray<string>
    ): Effect.Effect<ReadonlyArray<string | null>, ConnectionError | CommandError> => {
      const keyList = keys as Array<string>
      if (keyList.length === 0) return Effect.succeed([])
      if (keyList.length < 2 * MGET_MIN_PART) return execute("MGET", (c) => c.mGet(keyList))
      const parts = Math.max(2, Math.ceil(keyList.length / MGET_CHUNK))
      const size = Math.ceil(keyList.length / parts)
      return execute("MGET", (c) => {
        const replies: Array<Promise<ReadonlyArray<string | null>>> = []
        for (let i = 0; i < keyList.length; i += size) replies.push(c.mGet(keyList.slice(i, i + size)))
        // concat, not flat(): flat() is far slower on arrays this long.
        return Promise.all(replies).then((got) => ([] as Array<string | null>).concat(...got))
      })
    }

    const driver: Driver.Driver = { execute, connect: options.connector }

    return RedisClient.of({
      [TypeId]: TypeId,
      uri: options.uri,
      db: options.db,
      healthCheckInterval:
        options.healthCheckInterval === undefined ? undefined : Duration.decode(options.healthCheckInterval),
      command: (args) => execute(args[0] ?? "", (c) => c.sendCommand<Reply>([...args])),
      commands: (list) =>
        list.length === 0
          ? Effect.succeed([])
          : execute(list[0]?.[0] ?? "", (c) => Promise.all(list.map((args) => c.sendCommand<Reply>([...args])))),
      get,
      getWith,
      mget,
      del: (keys) => (keys.length === 0 ? Effect.succeed(0) : execute("DEL", (c) => c.del([...keys]))),
      incrBy: (key, increment) => execute("INCRBY", (c) => c.incrBy(key, increment)),
      publish: (channel, message) => execute("PUBLISH", (c) => c.publish(channel, message)),
      runScript: (script, keys, args) => execute("EVALSHA", (c) => Driver.runScript(c, script, keys, args)),
      batched: (spec) =>
        batched({
          command: spec.command,
          maxBatch: spec.maxBatch,
          one: (c, item) => spec.one(Driver.commandsOf(c), item),
          many: (c, items) => spec.many(Driver.commandsOf(c), items),
          outcome: spec.outcome,
          recover: spec.recover
        }),
      [Driver.DriverId]: driver
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
    const target = RedisConfig.displayUri(config)
    const connectorOptions = { target, connectTimeout: Duration.millis(RedisConfig.connectTimeoutMillis(config)) }
    const provider = config.credentialProvider
    return make({
      // A credential provider is asked again for every connection (reconnects included).
      connector:
        provider === undefined
          ? connector(clientOptions, connectorOptions)
          : Effect.flatMap(
              RedisConfig.withCredentials(clientOptions, provider, target, connectorOptions.connectTimeout),
              (o) => connector(o, connectorOptions)
            ),
      uri: RedisConfig.displayUri(config),
      db: RedisConfig.dbOf(config),
      server: RedisConfig.serverOf(config),
      failFast: config.failFast,
      additionalConnectionErrors: config.additionalConnectionErrors,
      ...(healthCheck !== undefined ? { healthCheckInterval: Duration.millis(healthCheck) } : {}),
      ...(socketTimeout !== undefined ? { socketTimeout: Duration.millis(socketTimeout) } : {})
    })
  })

/** A `RedisClient` for a `RedisConfig` (host/port or unix `path`, db, ACL user, TLS, timeouts). */
export const layer = (
  config: RedisConfig.RedisConfig
): Layer.Layer<RedisClient, ConnectionError | ImproperlyConfigured> => Layer.scoped(RedisClient, fromConfig(config))

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
export const urlConfig: Config.Config<{ readonly url: Redacted.Redacted; readonly options: RedisUrl.UrlOptions }> =
  Config.all({
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
export const layerConfig = (): Layer.Layer<
  RedisClient,
  ConnectionError | ImproperlyConfigured | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(urlConfig, ({ options, url }) => layerUrl(url, options)))
