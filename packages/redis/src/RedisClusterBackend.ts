/**
 * The result backend and the Pub/Sub consumer on a Redis Cluster (node-redis v4's
 * `createCluster`), providing the same `ResultBackend` and `ResultConsumer` services as
 * `RedisBackend`, in one of two layouts:
 *
 * - `"single-slot"` (the default, Celery-interoperable): `keys.globalKeyprefix` carries a hash tag,
 *   e.g. `{celery}:`, so every key of the backend hashes to one slot: every operation, chords
 *   included, runs as on one server (the same scripts, MGETs and chord keys). Python Celery ≥ 5.3
 *   with `result_backend_transport_options={'global_keyprefix': '{celery}:'}` reads and writes the
 *   same keys. This buys failover (a replica promoted when the slot's master dies) and managed
 *   cluster-mode Redis/Valkey compatibility, not load spreading: one master serves all of it.
 * - `"spread"`: Celery's plain key names, spread over every slot and master. Stores of one tick are
 *   batched per slot (the store script once per slot); `getAll`/`getMany` (and the GETs of one
 *   tick) read with one script call per master (Redis ≥ 7: `allow-cross-slot-keys`, the keys of
 *   every slot the master serves), sent to every master at once and reassembled in the asked
 *   order; a master's part that meets a slot moved or moving is read again with one MGET per
 *   slot, following MOVED and ASK (see `internal/cluster.ts`). Chords need their three
 *   keys in one slot: `setChordSize`, `addToChord` and `onChordPartReturn` fail with a
 *   `CommandError` (`command: "CHORD"`, see `isChordRejected`) in this layout. Group results
 *   (`saveGroup`, `restoreGroup`, `deleteGroup`) are one key each and work.
 *
 * Both layouts: commands are routed by their key's slot; MOVED and ASK are followed by node-redis;
 * a command that meets a dead master fails as a lost connection (retried under the retry policy)
 * and the slot map is read again from the root nodes; while a failover is in progress the
 * cluster answers CLUSTERDOWN, retried the same way.
 *
 * Pub/Sub: classic SUBSCRIBE (Python Celery PUBLISHes, and a classic PUBLISH reaches every node of
 * the cluster), each channel on a connection to the master serving its key's slot (one subscriber
 * connection per master, up to 15, which follows its slots to a promoted replica after a failover;
 * others, and any during a failover, on a connection to the root nodes in turn), so a store's
 * publication does not cross the cluster bus on its way. A watch of keys on several masters is
 * split over their connections and still syncs as one; a watch begun before the client's first
 * command waits for the slot map. Every connection resyncs its
 * watches (re-SUBSCRIBE, then read the keys) after it reconnects and after every topology change:
 * the cluster's `cluster_current_epoch` is polled every `topologyCheckInterval` (1 s by default)
 * while something is watched, and a change (a failover, a slot handover) replaces every subscriber
 * connection, so a publication lost with a dead master is made up by the read.
 *
 * `socketTimeout` bounds every command: one with no reply for that long (a frozen master) fails with
 * `ConnectionError("Timeout")` and every node connection is replaced (the whole cluster object: its
 * slot map may be what is stale). A `credentialProvider` is asked before each cluster object is
 * opened (its answer serves every node connection of it) and before each subscriber connection.
 *
 * Not supported on a cluster: a database other than 0, unix sockets.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { CommandError, type ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import type { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as TaskIds from "@effect-celery/core/TaskIds"
import * as Telemetry from "@effect-celery/core/Telemetry"
import * as Batcher from "./internal/batcher.js"
import * as Cluster from "./internal/cluster.js"
import * as ClusterPubSub from "./internal/clusterPubSub.js"
import * as Driver from "./internal/driver.js"
import { classify } from "./internal/errors.js"
import * as RedisClient from "./RedisClient.js"
import * as RedisConfig from "./RedisConfig.js"
import * as RedisConnection from "./RedisConnection.js"
import * as RedisResultBackend from "./RedisResultBackend.js"
import * as RedisResultConsumer from "./RedisResultConsumer.js"
import * as RedisUrl from "./RedisUrl.js"

export type Services = ResultBackend | ResultConsumer | RedisClient.RedisClient

/** Where the keys live: all in one slot (hash-tagged prefix), or spread over every slot. */
export type Layout = "single-slot" | "spread"

/** A cluster node's address. */
export interface NodeAddress {
  readonly host: string
  readonly port: number
}

/** A cluster node to read the slot map from: `{ host, port }` or `"host:port"`. */
export type RootNode = NodeAddress | string

/**
 * The cluster connection: root nodes (any reachable few; the rest is discovered) and what every
 * node connection uses (ACL user, password, TLS, timeouts), as in `RedisConfig`.
 */
export interface ClusterConfig extends Omit<RedisConfig.RedisConfig, "host" | "port" | "path" | "db"> {
  readonly rootNodes: ReadonlyArray<RootNode>
  /**
   * While something is watched, how often the cluster's epoch is read to notice a topology change
   * (then the subscriber resyncs). Default 1 s.
   */
  readonly topologyCheckInterval?: Duration.DurationInput | undefined
}

export interface Options extends BackendOptions {
  /** Default `"single-slot"`, which needs a hash-tagged `keys.globalKeyprefix` such as `{celery}:`. */
  readonly layout?: Layout | undefined
}

const DEFAULT_TOPOLOGY_CHECK = Duration.seconds(1)

// ---------------------------------------------------------------------------------------------
// layouts
// ---------------------------------------------------------------------------------------------

/** The hash tag of a prefix (`celery` of `{celery}:`): the first `{…}` with something inside, if complete. */
export const hashTagOf = (prefix: string): string | undefined => {
  const open = prefix.indexOf("{")
  if (open === -1) return undefined
  const close = prefix.indexOf("}", open + 1)
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined
}

/** The layout's requirement on the key prefix, checked when the layer is built. */
export const checkLayout = (
  layout: Layout,
  keys: Keys.KeyLayoutOptions | undefined
): Effect.Effect<void, ImproperlyConfigured> => {
  const prefix = Keys.globalPrefix(keys ?? {})
  const tag = hashTagOf(prefix)
  if (layout === "single-slot" && tag === undefined) {
    return Effect.fail(
      new ImproperlyConfigured({
        message:
          `The single-slot cluster layout needs a hash-tagged global_keyprefix such as "{celery}:" (got ${JSON.stringify(prefix)}); ` +
          `set keys.globalKeyprefix, or choose layout "spread"`
      })
    )
  }
  if (layout === "spread" && tag !== undefined) {
    return Effect.fail(
      new ImproperlyConfigured({
        message: `The global_keyprefix ${JSON.stringify(prefix)} puts every key in one slot: choose layout "single-slot"`
      })
    )
  }
  return Effect.void
}

/** The message of a chord operation rejected by the spread layout. */
export const CHORD_REJECTED =
  'Chords need their keys in one hash slot: use the single-slot cluster layout (a hash-tagged global_keyprefix such as "{celery}:")'

/** Whether `error` is a chord operation rejected by the spread layout. */
export const isChordRejected = (error: unknown): error is CommandError =>
  error instanceof CommandError && error.command === "CHORD" && error.message === CHORD_REJECTED

const rejectChords = (backend: ResultBackend): ResultBackend => {
  const rejected = Effect.fail(new CommandError({ command: "CHORD", message: CHORD_REJECTED }))
  return { ...backend, setChordSize: () => rejected, addToChord: () => rejected, onChordPartReturn: () => rejected }
}

// ---------------------------------------------------------------------------------------------
// the client
// ---------------------------------------------------------------------------------------------

const rootNodeOf = (node: RootNode): Either.Either<Cluster.RootNode, ImproperlyConfigured> => {
  if (typeof node !== "string") return Either.right(node)
  const match = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(node.trim())
  if (match === null || match[1] === "")
    return Either.left(new ImproperlyConfigured({ message: `Not a cluster node: ${JSON.stringify(node)}` }))
  return Either.right({ host: match[1]!, port: match[2] === undefined ? 6379 : Number(match[2]) })
}

const addressOf = (node: Cluster.RootNode) => `${node.host.includes(":") ? `[${node.host}]` : node.host}:${node.port}`

/**
 * A `RedisClient` over the cluster: commands routed by slot (see the module doc), the subscriber's
 * connections to one node at a time with a topology watch. Lazy like `RedisClient.make` unless
 * `failFast`.
 */
export const makeClient = (
  config: ClusterConfig
): Effect.Effect<RedisClient.RedisClient, ConnectionError | ImproperlyConfigured, Scope.Scope> =>
  Effect.gen(function* () {
    const rootNodes: Array<Cluster.RootNode> = []
    for (const node of config.rootNodes) rootNodes.push(yield* rootNodeOf(node))
    if (rootNodes.length === 0)
      return yield* new ImproperlyConfigured({ message: "A cluster needs at least one root node" })
    const first = rootNodes[0]!
    const nodeConfig: RedisConfig.RedisConfig = { ...config, host: first.host, port: first.port }
    const clientOptions = yield* RedisConfig.clientOptions(nodeConfig)
    const connectTimeout = Duration.millis(RedisConfig.connectTimeoutMillis(nodeConfig))
    const socketTimeout = RedisConfig.socketTimeoutMillis(nodeConfig)
    const uri = config.uri ?? `redis://${rootNodes.map(addressOf).join(",")}`
    const provider = config.credentialProvider
    // Asked before every connection: each cluster object (all its node clients) and each
    // subscriber connection, reconnects included.
    const withCredentials =
      provider === undefined
        ? undefined
        : (options: RedisConfig.NodeRedisOptions) => RedisConfig.withCredentials(options, provider, uri, connectTimeout)
    const connections = yield* Cluster.make({
      rootNodes,
      defaults: RedisConnection.forcedOptions(clientOptions, connectTimeout),
      uri,
      connectTimeout,
      closeTimeout: RedisConnection.DEFAULT_CLOSE_TIMEOUT,
      failFast: config.failFast,
      additionalConnectionErrors: config.additionalConnectionErrors,
      credentials: withCredentials,
      ...(socketTimeout !== undefined ? { socketTimeout: Duration.millis(socketTimeout) } : {})
    })
    const batched = Batcher.make(connections)
    const { execute } = connections

    const getWith = <O, E>(outcome: (value: string | null, key: string) => Either.Either<O, E>) =>
      batched<string, string | null, O, E>({
        command: "GET",
        maxBatch: RedisClient.MGET_CHUNK,
        one: (c, key) => c.get(key),
        many: (c, keys) => c.mget(keys),
        outcome
      })

    const mget = (keys: ReadonlyArray<string>) => {
      if (keys.length === 0) return Effect.succeed([])
      return execute("MGET", (c) => {
        if (keys.length <= RedisClient.MGET_CHUNK) return c.mget(keys)
        const parts: Array<Promise<ReadonlyArray<string | null>>> = []
        for (let i = 0; i < keys.length; i += RedisClient.MGET_CHUNK)
          parts.push(c.mget(keys.slice(i, i + RedisClient.MGET_CHUNK)))
        return Promise.all(parts).then((got) => ([] as Array<string | null>).concat(...got))
      })
    }

    /** A dedicated connection (for SUBSCRIBE) to one node. */
    const connectTo = (node: Cluster.RootNode) => {
      const options = { ...clientOptions, socket: { ...clientOptions.socket, host: node.host, port: node.port } }
      // Named in errors by `RedisConnection.targetOfOptions`, as every server is (Celery's as_uri()).
      return withCredentials === undefined
        ? RedisConnection.connector(options, { connectTimeout })
        : Effect.flatMap(withCredentials(options), (o) => RedisConnection.connector(o, { connectTimeout }))
    }
    const placement = yield* ClusterPubSub.make({
      rootNodes,
      uri,
      connectTo,
      cluster: () => connections.live()?.cluster,
      prepare: Effect.asVoid(connections.acquire),
      // Through the command path, so the socket timeout bounds it too (a frozen node).
      readEpoch: Effect.map(
        execute("CLUSTER INFO", (c) => c.command(["CLUSTER", "INFO"])),
        (info) => Cluster.epochOf(String(info))
      ),
      onTopologyChange: Effect.suspend(() => {
        const conn = connections.live()
        return conn === undefined ? Effect.void : connections.drop(conn)
      }),
      topologyCheckInterval: Duration.decode(config.topologyCheckInterval ?? DEFAULT_TOPOLOGY_CHECK)
    })

    const driver: Driver.Driver = {
      // Raw access (tests): one master's node client.
      execute: (command, f) =>
        Effect.flatMap(connections.acquire, (conn) =>
          Effect.tryPromise({
            try: async () => f(await conn.cluster.nodeClient(conn.cluster.getRandomNode())),
            catch: (cause) => classify(command, cause)
          })
        ),
      connect: placement.connect(0),
      placement
    }

    return RedisClient.RedisClient.of({
      [RedisClient.TypeId]: RedisClient.TypeId,
      uri,
      db: 0,
      healthCheckInterval:
        config.healthCheckInterval === undefined ? undefined : Duration.decode(config.healthCheckInterval),
      command: (args) => execute(args[0] ?? "", (c) => c.command(args)),
      commands: (list) =>
        list.length === 0
          ? Effect.succeed([])
          : execute(list[0]?.[0] ?? "", (c) => Promise.all(list.map((args) => c.command(args)))),
      get: getWith(Either.right),
      getWith,
      mget,
      del: (keys) =>
        keys.length === 0
          ? Effect.succeed(0)
          : Effect.flatMap(connections.acquire, (conn) => execute("DEL", () => Cluster.del(conn.cluster, keys))),
      incrBy: (key, increment) =>
        execute("INCRBY", (c) => c.command(["INCRBY", key, String(increment)]) as Promise<number>),
      publish: (channel, message) =>
        execute("PUBLISH", (c) => c.command(["PUBLISH", channel, message]) as Promise<number>),
      runScript: (script, keys, args) => execute("EVALSHA", (c) => c.runScript(script, keys, args)),
      batched: (spec) => batched(spec),
      [Driver.DriverId]: driver
    })
  }).pipe(Effect.annotateLogs({ package: "@effect-celery/redis", module: "RedisClusterBackend" }))

/** The cluster `RedisClient` alone. */
export const layerClient = (
  config: ClusterConfig
): Layer.Layer<RedisClient.RedisClient, ConnectionError | ImproperlyConfigured> =>
  Layer.scoped(RedisClient.RedisClient, makeClient(config))

// ---------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------

/** The backend and the consumer in `options.layout` over a given cluster client layer. */
export const layerWithClient = <A, E, R>(
  client: Layer.Layer<RedisClient.RedisClient | A, E, R>,
  options: Options = {}
): Layer.Layer<Services | A, E | ImproperlyConfigured, R> => {
  const layout = options.layout ?? "single-slot"
  // As `RedisResultBackend.layer` (ids validated, spans and metrics, which name the first root
  // node as the server), with the layout's check and rejections.
  const backend = Layer.effect(
    ResultBackend,
    Effect.zipRight(
      checkLayout(layout, options.keys),
      Effect.zipWith(RedisResultBackend.make(options), RedisClient.RedisClient, (b, client) =>
        Telemetry.instrumentBackend(
          // Ids are validated first: an empty group id is an InvalidIdError in every layout.
          TaskIds.validateBackend(layout === "spread" ? rejectChords(b) : b),
          Telemetry.targetFromUri(client.uri.split(",")[0] ?? client.uri, client.db),
          options
        )
      )
    )
  )
  return backend.pipe(Layer.provideMerge(RedisResultConsumer.layer(options)), Layer.provideMerge(client))
}

/** From a `ClusterConfig` (root nodes, ACL, TLS, timeouts). */
export const layer = (
  config: ClusterConfig,
  options: Options = {}
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured> => layerWithClient(layerClient(config), options)

/**
 * The `ClusterConfig` of a Celery-style URL naming several nodes, comma-separated in the host part:
 * `redis://[user:password@]host1:port1,host2:port2,…[/0][?query]` (`rediss://` for TLS). Each is a
 * root node; the query and options are parsed as Celery parses a `result_backend` URL
 * (`RedisUrl.parse`, with the first node as its host). A database other than 0 is refused.
 */
export const configOfUrl = (
  url: string | Redacted.Redacted,
  options: RedisUrl.UrlOptions = {}
): Effect.Effect<ClusterConfig, ImproperlyConfigured> =>
  Effect.gen(function* () {
    const text = Redacted.isRedacted(url) ? Redacted.value(url) : url
    const match = /^(rediss?):\/\/(?:([^@/?#]*)@)?([^/?#]*)(.*)$/.exec(text)
    if (match === null) {
      return yield* new ImproperlyConfigured({
        message: "A cluster URL is redis://host1:port1,host2:port2,… (or rediss://)"
      })
    }
    const [, scheme, userinfo, hosts, rest] = match
    const nodes: Array<Cluster.RootNode> = []
    for (const host of hosts!.split(",").filter((h) => h.trim() !== "")) nodes.push(yield* rootNodeOf(host))
    if (nodes.length === 0) return yield* new ImproperlyConfigured({ message: "A cluster URL names no node" })
    const single = `${scheme}://${userinfo !== undefined ? `${userinfo}@` : ""}${addressOf(nodes[0]!)}${rest}`
    const config = yield* RedisUrl.toConfig(single, options)
    if (RedisConfig.dbOf(config) !== 0) {
      return yield* new ImproperlyConfigured({
        message: `A Redis Cluster has only database 0 (the URL selects ${RedisConfig.dbOf(config)})`
      })
    }
    const { db: _db, host: _host, path: _path, port: _port, uri: single1, ...common } = config
    const uri = (single1 ?? single).replace(addressOf(nodes[0]!), nodes.map(addressOf).join(","))
    return { ...common, rootNodes: nodes, uri } satisfies ClusterConfig
  })

/** From a Celery-style URL with several nodes (see `configOfUrl`). */
export const layerUrl = (
  url: string | Redacted.Redacted,
  options: Options & { readonly connection?: RedisUrl.UrlOptions | undefined } = {}
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured> =>
  layerWithClient(Layer.unwrapEffect(Effect.map(configOfUrl(url, options.connection ?? {}), layerClient)), options)

/** Everything `layerConfig` reads. */
export interface LayerConfig extends Options {
  /** The cluster URL, nodes comma-separated (see `configOfUrl`). */
  readonly url: Redacted.Redacted
  /** Celery's `redis_*` settings that are not in the URL. */
  readonly connection?: RedisUrl.UrlOptions | undefined
}

/**
 * The default of `layerConfig`: `CELERY_RESULT_BACKEND` (nodes comma-separated) and the
 * `CELERY_REDIS_*` variables as `RedisClient.urlConfig` reads them; `CELERY_RESULT_KEYPREFIX` the
 * `global_keyprefix` (e.g. `{celery}:`) and `CELERY_REDIS_CLUSTER_LAYOUT` the layout
 * (`single-slot`, the default, or `spread`).
 */
export const envConfig: Config.Config<LayerConfig> = Config.map(
  Config.all({
    base: RedisClient.urlConfig,
    prefix: Config.option(Config.string("CELERY_RESULT_KEYPREFIX")),
    layout: Config.literal(
      "single-slot",
      "spread"
    )("CELERY_REDIS_CLUSTER_LAYOUT").pipe(Config.withDefault("single-slot" as const))
  }),
  ({ base, layout, prefix }): LayerConfig => ({
    url: base.url,
    connection: base.options,
    layout,
    ...(prefix._tag === "Some" ? { keys: { globalKeyprefix: prefix.value } } : {})
  })
)

/** From `effect/Config`, as `RedisBackend.layerConfig` (without an argument: `envConfig`). */
export const layerConfig = (
  config: Config.Config.Wrap<LayerConfig> = envConfig
): Layer.Layer<Services, ConnectionError | ImproperlyConfigured | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), ({ url, ...options }) => layerUrl(url, options)))
