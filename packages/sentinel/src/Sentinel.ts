/**
 * Redis Sentinel for the Celery result backend (Celery's `SentinelBackend`), on node-redis v4,
 * which has no Sentinel client: this follows the public Sentinel client protocol.
 *
 * - Discovery is redis-py's `discover_master`: ask the sentinels in list order
 *   (`SENTINEL MASTER <name>`), accept a master that is flagged `master`, is neither `s_down` nor
 *   `o_down`, and is seen by at least `min_other_sentinels` other sentinels; connection errors and
 *   timeouts move on to the next sentinel; the sentinel that answered is swapped to the front. None
 *   → `ConnectionError` with reason "MasterNotFound" (`No master found for '<name>'`, with every
 *   sentinel's reason), which the retry policy retries like any connection error.
 * - The connector handed to `RedisClient.make` discovers, connects to the master (TLS, AUTH and
 *   SELECT as configured for the data nodes) and checks `ROLE` is `master`.
 * - A background fiber subscribed to a sentinel's `+switch-master` channel (moving to another
 *   sentinel when its sentinel goes away) closes every connection the connector made to a node that
 *   is no longer the master, so the command and subscriber connections both re-connect.
 * - Metrics (`effect/Metric`, recorded whatever the backend's `metrics` option says: they move only
 *   on connects, failovers and watcher changes): {@link masterSwitches}, {@link masterConnections},
 *   {@link watcherSubscribed}, each tagged `celery.sentinel.master` and the metric labels in
 *   effect where the layer is built.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import * as RedisClient from "@effect-celery/redis/RedisClient"
import * as RedisConfig from "@effect-celery/redis/RedisConfig"
import * as RedisConnection from "@effect-celery/redis/RedisConnection"
import type { NodeRedis } from "@effect-celery/redis/RedisConnection"
import { classify } from "@effect-celery/redis/RedisErrors"
import type { Address } from "./internal/address.js"
import { formatAddress, sameAddress } from "./internal/address.js"
import * as Tls from "./internal/tls.js"
import type { SslOptions } from "./internal/tls.js"
import * as SentinelUrl from "./SentinelUrl.js"

export type { Address } from "./internal/address.js"
export type { SslOptions } from "./internal/tls.js"

export const TypeId: unique symbol = Symbol.for("@effect-celery/sentinel/Sentinel")
export type TypeId = typeof TypeId

/**
 * `sentinel_kwargs`: how to talk to the sentinels themselves. Celery passes `{}`, so by default the
 * sentinels get no password and no TLS. Unlike redis-py (no timeout at all), a sentinel that does not
 * answer within {@link DEFAULT_SENTINEL_TIMEOUT} is skipped, so discovery cannot hang.
 */
export interface SentinelKwargs extends SslOptions {
  readonly password?: Redacted.Redacted | string | undefined
  readonly username?: string | undefined
  /** Connect to the sentinels over TLS (redis-py `ssl=True`; `ssl_cert_reqs` defaults to required). */
  readonly ssl?: boolean | undefined
  /** Seconds to wait for a sentinel's reply. */
  readonly socket_timeout?: number | undefined
  /** Seconds to wait for a sentinel connection (default: `socket_timeout`). */
  readonly socket_connect_timeout?: number | undefined
}

/** Celery's transport options and settings that concern Sentinel. */
export interface SentinelOptions {
  /** `master_name`: the monitored service. Required. */
  readonly masterName?: string | undefined
  /** `min_other_sentinels` (default 0). */
  readonly minOtherSentinels?: number | undefined
  /** `sentinel_kwargs` (default `{}`). */
  readonly sentinelKwargs?: SentinelKwargs | undefined
  /** `redis_backend_use_ssl`: TLS to the data nodes (`ssl_cert_reqs` is then mandatory). */
  readonly useSsl?: SslOptions | undefined
  /** `redis_password`: the data-node password when the URL's first chunk has none. */
  readonly password?: Redacted.Redacted | string | undefined
  /** `redis_username`: the data-node ACL user when the URL's first chunk has none. */
  readonly username?: string | undefined
  /** Time allowed to connect to the master (TCP, TLS, AUTH, SELECT, ROLE). Default 5 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * `redis_socket_timeout` for the master connections: a command with no reply for this long fails
   * with `ConnectionError("Timeout")`. Default 120 s; `null` = none.
   */
  readonly socketTimeout?: Duration.DurationInput | null | undefined
  /** `redis_client_name`: `CLIENT SETNAME` on the master connections. */
  readonly clientName?: string | undefined
  /**
   * Discover the master and connect while the layer is built (one attempt, no retry): the layer
   * fails with `ConnectionError("MasterNotFound")` when no master can be found now. Default
   * `false`: the first call discovers and connects, under the retry policy.
   */
  readonly failFast?: boolean | undefined
  /**
   * Error-reply prefixes retried like a lost connection, beyond LOADING, BUSY, READONLY,
   * MASTERDOWN, TRYAGAIN and CLUSTERDOWN (Celery 5.7's `additional_connection_errors`).
   */
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
  /**
   * Celery 5.6's `redis_backend_credential_provider` for the master connections: run before each
   * one is opened (first connect, reconnects, after a failover), its username/password replacing
   * the URL's. The sentinels keep `sentinelKwargs`. See `RedisConfig.credentialProvider`.
   */
  readonly credentialProvider?: RedisConfig.CredentialProvider | undefined
}

export interface Config extends SentinelOptions {
  /** The sentinels, in the order to ask them. */
  readonly sentinels: ReadonlyArray<Address>
  /** The data-node database (default 0). */
  readonly db?: number | undefined
  /** How to show this backend (Celery's `as_uri()`); defaults to the sentinel list. */
  readonly uri?: string | undefined
}

/** What one sentinel says about a master (`SENTINEL MASTER <name>`). */
export interface MasterState {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly flags: ReadonlyArray<string>
  readonly isMaster: boolean
  readonly isSdown: boolean
  readonly isOdown: boolean
  readonly numOtherSentinels: number
}

export interface Sentinel {
  readonly [TypeId]: TypeId
  readonly masterName: string
  /** Celery's `as_uri()` of the sentinel URL (passwords masked). */
  readonly uri: string
  readonly db: number
  /** The sentinels in the order the next discovery asks them. */
  readonly sentinels: () => ReadonlyArray<Address>
  /** Find the current master (see the module doc). */
  readonly discover: Effect.Effect<Address, ConnectionError>
  /**
   * The connector for `RedisClient.make`: discover, connect, verify `ROLE`; the connection is
   * closed with the scope, or earlier when the master switches away from it.
   */
  readonly connect: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
}

// ---------------------------------------------------------------------------------------------
// Metrics

/** Metric label keys of the Sentinel metrics. */
export const MetricAttr = {
  /** The monitored master's name (`master_name`): on every Sentinel metric. */
  master: "celery.sentinel.master",
  /** The sentinel's host, on {@link watcherSubscribed}. */
  serverAddress: "server.address",
  /** The sentinel's port (as a string), on {@link watcherSubscribed}. */
  serverPort: "server.port"
} as const

/**
 * `+switch-master` events for this master that the watcher has seen: one per failover (each
 * closes the connections to the old master). Tagged `celery.sentinel.master`.
 */
export const masterSwitches: Metric.Metric.Counter<number> = Metric.counter("celery.sentinel.switches", {
  description: "Sentinel +switch-master events seen for the master",
  incremental: true
})

/** Connections to the master made by the connector and still open. Tagged `celery.sentinel.master`. */
export const masterConnections: Metric.Metric.Gauge<number> = Metric.gauge("celery.sentinel.connections", {
  description: "Open connections to the Sentinel master"
})

/**
 * Watchers subscribed to `+switch-master` on a sentinel: 1 on the sentinel the watcher listens to
 * (tagged `server.address`, `server.port` and `celery.sentinel.master`), 0 once it has moved on.
 * No 1 anywhere means a failover is only noticed when a connection to the old master fails.
 */
export const watcherSubscribed: Metric.Metric.Gauge<number> = Metric.gauge("celery.sentinel.watching", {
  description: "Sentinel +switch-master subscriptions, by sentinel"
})

export const Sentinel: Context.Tag<Sentinel, Sentinel> = Context.GenericTag<Sentinel>(
  "@effect-celery/sentinel/Sentinel"
)

/** The wait for one sentinel (connect + reply) when `sentinel_kwargs` sets no `socket_timeout`. */
export const DEFAULT_SENTINEL_TIMEOUT: Duration.Duration = Duration.seconds(5)
/** Default for `connectTimeout` (data nodes). */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)
/** Pause before the watcher tries the sentinels again when none could be subscribed to. */
const WATCH_RETRY_DELAY = Duration.seconds(1)

const fields = (reply: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  return out
}

/** Parse a `SENTINEL MASTER <name>` reply (flat field/value list), as redis-py's `parse_sentinel_state`. */
export const parseMasterState = (reply: unknown): MasterState | undefined => {
  const f = fields(reply)
  const host = f["ip"]
  const port = Number(f["port"])
  if (host === undefined || !Number.isInteger(port)) return undefined
  const flags = (f["flags"] ?? "").split(",").filter((s) => s !== "")
  return {
    name: f["name"] ?? "",
    host,
    port,
    flags,
    isMaster: flags.includes("master"),
    isSdown: flags.includes("s_down"),
    isOdown: flags.includes("o_down"),
    numOtherSentinels: Number(f["num-other-sentinels"] ?? 0)
  }
}

/** redis-py `check_master_state`: why this master is not usable, or undefined when it is. */
export const rejectReason = (
  state: MasterState,
  minOtherSentinels: number,
  name: (address: Address) => string = formatAddress
): string | undefined => {
  if (!state.isMaster) return `${name(state)} is not flagged master (flags ${state.flags.join(",")})`
  if (state.isSdown || state.isOdown) return `master ${name(state)} is down (flags ${state.flags.join(",")})`
  if (state.numOtherSentinels < minOtherSentinels) {
    return `sees ${state.numOtherSentinels} other sentinels, fewer than min_other_sentinels=${minOtherSentinels}`
  }
  return undefined
}

const seconds = (what: string, value: number | undefined) =>
  value === undefined
    ? Effect.succeed(undefined)
    : Number.isFinite(value) && value > 0
      ? Effect.succeed(Duration.millis(value * 1000))
      : Effect.fail(
          new ImproperlyConfigured({
            message: `sentinel_kwargs.${what} must be a positive number of seconds, got ${value}`
          })
        )

/** Prepared options aimed at one node. */
const at = (options: RedisConfig.NodeRedisOptions, address: Address): RedisConfig.NodeRedisOptions => ({
  ...options,
  socket: { ...options.socket, host: address.host, port: address.port }
})

/**
 * Options aimed at one sentinel: no CLIENT SETINFO on these short discovery and watcher
 * connections, as before (the master connections announce this library like every `RedisClient`
 * connection; see `RedisConnection`).
 */
const atSentinel = (options: RedisConfig.NodeRedisOptions, address: Address): RedisConfig.NodeRedisOptions => ({
  ...at(options, address),
  disableClientInfo: true
})

const redact = (value: Redacted.Redacted | string | undefined) =>
  value === undefined || Redacted.isRedacted(value) ? value : Redacted.make(value)

/**
 * A Sentinel-backed master finder and connector; the `+switch-master` watcher runs until the scope
 * closes. Fails with `ImproperlyConfigured` for a missing master name, no sentinels, bad options.
 */
export const make = (config: Config): Effect.Effect<Sentinel, ImproperlyConfigured, Scope.Scope> =>
  Effect.gen(function* () {
    const masterName = config.masterName
    if (masterName === undefined || masterName === "") {
      return yield* new ImproperlyConfigured({
        message:
          "Sentinel: the transport option master_name (masterName) is required: the name of the master the sentinels monitor"
      })
    }
    if (config.sentinels.length === 0) {
      return yield* new ImproperlyConfigured({ message: "Sentinel: no sentinel addresses given" })
    }
    const minOtherSentinels = config.minOtherSentinels ?? 0
    if (!Number.isInteger(minOtherSentinels) || minOtherSentinels < 0) {
      return yield* new ImproperlyConfigured({
        message: `Sentinel: min_other_sentinels must be a non-negative integer, got ${minOtherSentinels}`
      })
    }
    const db = config.db ?? 0
    const kwargs = config.sentinelKwargs ?? {}
    const replyTimeout = (yield* seconds("socket_timeout", kwargs.socket_timeout)) ?? DEFAULT_SENTINEL_TIMEOUT
    const sentinelConnectTimeout =
      (yield* seconds("socket_connect_timeout", kwargs.socket_connect_timeout)) ?? replyTimeout
    // Options are built (TLS files read) once; each connection only swaps in its host and port.
    const sentinelOptions = yield* RedisConfig.clientOptions({
      username: kwargs.username,
      password: redact(kwargs.password),
      tls: kwargs.ssl === true ? yield* Tls.toTlsConfig(kwargs, false) : undefined,
      connectTimeout: sentinelConnectTimeout
    })
    const dataConnectTimeout = Duration.decode(config.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT)
    const dataOptions = yield* RedisConfig.clientOptions({
      db,
      username: config.username,
      password: redact(config.password),
      tls: config.useSsl !== undefined ? yield* Tls.toTlsConfig(config.useSsl, true) : undefined,
      connectTimeout: dataConnectTimeout,
      clientName: config.clientName
    })
    // Every message names a node as Celery's as_uri() would (`RedisConfig.serverUri`), password masked.
    const sentinelName = (a: Address): string =>
      RedisConnection.targetOfOptions({ ...atSentinel(sentinelOptions, a), database: db }, "sentinel")
    const nodeName = (a: Address): string => RedisConnection.targetOfOptions(at(dataOptions, a))
    const uri = config.uri ?? config.sentinels.map(sentinelName).join(";")
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runSync(runtime)

    const order: Array<Address> = [...config.sentinels]
    /** Connections made by `connect`, with the master address each one was made to. */
    const tracked = new Map<NodeRedis, Address>()

    // Metric labels: the master's name, then those in effect here (`Effect.tagMetrics` around the
    // layer), which the callbacks of node-redis below cannot read from a fiber.
    const extraLabels = yield* FiberRef.get(FiberRef.currentMetricLabels)
    const masterLabels = [MetricLabel.make(MetricAttr.master, masterName), ...extraLabels]
    const sentinelLabels = (sentinel: Address) => [
      MetricLabel.make(MetricAttr.master, masterName),
      MetricLabel.make(MetricAttr.serverAddress, sentinel.host),
      MetricLabel.make(MetricAttr.serverPort, String(sentinel.port)),
      ...extraLabels
    ]
    /** The connections counted in `masterConnections`, so each is counted down once. */
    const counted = new Set<NodeRedis>()
    const countOpen = (client: NodeRedis) => {
      if (!client.isOpen || counted.has(client)) return
      counted.add(client)
      masterConnections.unsafeModify(1, masterLabels)
    }
    const countClosed = (client: NodeRedis) => {
      if (counted.delete(client)) masterConnections.unsafeModify(-1, masterLabels)
    }

    const ask = (sentinel: Address): Effect.Effect<MasterState, string> =>
      Effect.scoped(
        Effect.gen(function* () {
          const target = sentinelName(sentinel)
          // Connect failures name the target already.
          const client = yield* Effect.mapError(
            RedisConnection.connector(atSentinel(sentinelOptions, sentinel), {
              target,
              connectTimeout: sentinelConnectTimeout
            }),
            (e) => e.message
          )
          const reply = yield* RedisConnection.command(
            client,
            target,
            ["SENTINEL", "MASTER", masterName],
            replyTimeout
          ).pipe(
            // Sentinels answer an unknown name with "ERR No such master with that name".
            Effect.mapError((e) =>
              /No such master/i.test(e.message)
                ? `${target}: no master named '${masterName}'`
                : `${target}: ${e.message}`
            )
          )
          const state = parseMasterState(reply)
          if (state === undefined)
            return yield* Effect.fail(`unexpected SENTINEL MASTER reply ${JSON.stringify(reply)}`)
          return state
        })
      )

    const discover: Effect.Effect<Address, ConnectionError> = Effect.gen(function* () {
      const reasons: Array<string> = []
      for (const sentinel of [...order]) {
        const result = yield* Effect.either(ask(sentinel))
        if (Either.isLeft(result)) {
          reasons.push(result.left)
          continue
        }
        const rejected = rejectReason(result.right, minOtherSentinels, nodeName)
        if (rejected !== undefined) {
          reasons.push(`${sentinelName(sentinel)}: ${rejected}`)
          continue
        }
        // redis-py swaps the sentinel that answered with the first one.
        const at = order.indexOf(sentinel)
        const first = order[0]
        if (at > 0 && first !== undefined) {
          order[0] = sentinel
          order[at] = first
        }
        return { host: result.right.host, port: result.right.port }
      }
      return yield* new ConnectionError({
        reason: "MasterNotFound",
        message: `No master found for '${masterName}' : ${reasons.join("; ")}`
      })
    }).pipe(
      Effect.withSpan("Sentinel.discover", {
        kind: "client",
        captureStackTrace: false,
        attributes: { "db.system.name": "redis", [MetricAttr.master]: masterName }
      })
    )

    const verifyRole = (client: NodeRedis, address: Address): Effect.Effect<void, ConnectionError> => {
      const target = nodeName(address)
      return RedisConnection.command(client, target, ["ROLE"], dataConnectTimeout).pipe(
        Effect.flatMap((reply) => {
          const role = Array.isArray(reply) ? String(reply[0]) : String(reply)
          return role === "master"
            ? Effect.void
            : Effect.fail(
                new ConnectionError({
                  reason: "MasterNotFound",
                  message: `No master found for '${masterName}' : ${target} reported as master but its ROLE is ${role}`
                })
              )
        }),
        Effect.catchTag("CommandError", (e) =>
          // A user without +role cannot verify (an ACL denial); redis-py does not verify at all.
          e.message.startsWith("NOPERM")
            ? Effect.void
            : Effect.fail(
                new ConnectionError({ reason: "Connect", message: `${target}: ROLE: ${e.message}`, cause: e.cause })
              )
        )
      )
    }

    const connect: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope> = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const address = yield* restore(discover)
        const target = nodeName(address)
        const provider = config.credentialProvider
        // A credential provider is asked again for every master connection.
        const options =
          provider === undefined
            ? dataOptions
            : yield* restore(RedisConfig.withCredentials(dataOptions, provider, target, dataConnectTimeout))
        const client = yield* RedisConnection.create(at(options, address), {
          target,
          connectTimeout: dataConnectTimeout
        })
        // node-redis emits "end" however the socket is closed (a switch, the scope, QUIT).
        client.on("end", () => countClosed(client))
        // Tracked from the start, so a switch during the connect closes it too.
        tracked.set(client, address)
        const opened = yield* Effect.exit(
          restore(
            RedisConnection.connect(client, target, dataConnectTimeout).pipe(
              Effect.zipRight(verifyRole(client, address))
            )
          )
        )
        if (Exit.isFailure(opened)) {
          tracked.delete(client)
          RedisConnection.destroy(client)
          return yield* Effect.failCause(opened.cause)
        }
        countOpen(client)
        yield* Effect.addFinalizer(() =>
          RedisConnection.release(client).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                tracked.delete(client)
                countClosed(client)
              })
            )
          )
        )
        return client
      })
    )

    /** Close every tracked connection that is not to `master`. */
    const closeStale = (master: Address, why: string) => {
      let closed = 0
      for (const [client, address] of tracked) {
        if (!sameAddress(address, master) && client.isOpen) {
          RedisConnection.destroy(client)
          closed++
        }
      }
      if (closed > 0) {
        log(Effect.logInfo(`Sentinel: ${why}: closed ${closed} connection(s) to the old master of '${masterName}'`))
      }
    }

    const onSwitch = (message: string) => {
      // "<name> <old-ip> <old-port> <new-ip> <new-port>"
      const parts = message.split(" ")
      if (parts.length !== 5 || parts[0] !== masterName) return
      const port = Number(parts[4])
      if (!Number.isInteger(port)) return
      masterSwitches.unsafeUpdate(1, masterLabels)
      closeStale({ host: parts[3] ?? "", port }, `+switch-master ${message}`)
    }

    /** Subscribe on one sentinel; succeeds when that subscription ends, fails if it cannot start. */
    const watchOn = (sentinel: Address) => {
      const labels = sentinelLabels(sentinel)
      let subscribed = false
      return Effect.scoped(
        Effect.gen(function* () {
          const target = sentinelName(sentinel)
          const ended = yield* Deferred.make<void>()
          const client: NodeRedis = yield* Effect.acquireRelease(
            RedisConnection.create(atSentinel(sentinelOptions, sentinel), {
              target,
              connectTimeout: sentinelConnectTimeout,
              onError: () => {
                if (!client.isOpen) Deferred.unsafeDone(ended, Exit.void)
              }
            }),
            (c) => Effect.sync(() => RedisConnection.destroy(c))
          )
          client.on("end", () => Deferred.unsafeDone(ended, Exit.void))
          yield* RedisConnection.connect(client, target, sentinelConnectTimeout)
          yield* Effect.tryPromise({
            try: () => client.subscribe("+switch-master", onSwitch),
            catch: (cause) => classify("SUBSCRIBE", cause)
          }).pipe(
            Effect.timeoutFail({
              duration: replyTimeout,
              onTimeout: () => new ConnectionError({ reason: "Timeout", message: `${target}: SUBSCRIBE timed out` })
            })
          )
          subscribed = true
          watcherSubscribed.unsafeModify(1, labels)
          yield* Effect.logDebug(`Sentinel: watching +switch-master on ${sentinelName(sentinel)}`)
          // A switch may have happened while no sentinel was watched: catch up once.
          const state = yield* Effect.either(ask(sentinel))
          if (Either.isRight(state) && rejectReason(state.right, minOtherSentinels) === undefined) {
            closeStale(state.right, `master of '${masterName}' is ${nodeName(state.right)}`)
          }
          yield* Deferred.await(ended)
          yield* Effect.logDebug(`Sentinel: lost the +switch-master subscription on ${sentinelName(sentinel)}`)
        })
      ).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (subscribed) watcherSubscribed.unsafeModify(-1, labels)
          })
        )
      )
    }

    const watcher = Effect.gen(function* () {
      while (true) {
        let subscribed = false
        for (const sentinel of [...order]) {
          const started = yield* Clock.currentTimeMillis
          const result = yield* Effect.either(watchOn(sentinel))
          if (Either.isRight(result)) {
            subscribed = (yield* Clock.currentTimeMillis) - started >= Duration.toMillis(WATCH_RETRY_DELAY)
            break
          }
          yield* Effect.logDebug(`Sentinel: cannot watch ${sentinelName(sentinel)}: ${result.left.message}`)
        }
        // Go straight to another sentinel after a long-lived subscription ends; otherwise pause.
        if (!subscribed) yield* Effect.sleep(WATCH_RETRY_DELAY)
      }
    }).pipe(
      Effect.annotateLogs({ package: "@effect-celery/sentinel", module: "Sentinel", fiber: "switch-master" }),
      Effect.interruptible
    )
    yield* Effect.forkScoped(watcher)

    return {
      [TypeId]: TypeId,
      masterName,
      uri,
      db,
      sentinels: () => [...order],
      discover,
      connect
    } satisfies Sentinel
  })

/** A `Config` from a Celery `sentinel://` URL and transport options. */
export const configFromUrl = (
  url: string,
  options: SentinelOptions = {}
): Effect.Effect<Config, ImproperlyConfigured> =>
  Effect.map(SentinelUrl.parse(url, { password: options.password, username: options.username }), (parsed): Config => ({
    ...options,
    sentinels: parsed.hosts.map((h) => ({ host: h.host, port: h.port })),
    db: parsed.db,
    username: parsed.username,
    password: parsed.password,
    uri: parsed.uri
  }))

/**
 * `RedisClient` (and `Sentinel`) for the master the sentinels name. Like `RedisClient.make`, it
 * discovers and connects on the first call, under the retry policy, so an application can start
 * before its sentinels know a master; with `failFast: true` the layer fails with
 * `ConnectionError("MasterNotFound")` when no master can be found now.
 */
export const layer = (
  config: Config
): Layer.Layer<RedisClient.RedisClient | Sentinel, ImproperlyConfigured | ConnectionError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const sentinel = yield* make(config)
      const socketTimeout = RedisConfig.socketTimeoutMillis({ socketTimeout: config.socketTimeout })
      const client = yield* RedisClient.make({
        connector: sentinel.connect,
        uri: sentinel.uri,
        db: sentinel.db,
        failFast: config.failFast,
        additionalConnectionErrors: config.additionalConnectionErrors,
        ...(socketTimeout !== undefined ? { socketTimeout: Duration.millis(socketTimeout) } : {})
      })
      return Context.make(Sentinel, sentinel).pipe(Context.add(RedisClient.RedisClient, client))
    })
  )

/**
 * The same as `layer`: TLS files no longer go through a `FileSystem`.
 * @deprecated since 0.2.0, use `layer`.
 */
export const layerWithoutFileSystem = layer

/** `RedisClient` (and `Sentinel`) from a Celery `sentinel://` URL and transport options. */
export const layerUrl = (
  url: string,
  options: SentinelOptions = {}
): Layer.Layer<RedisClient.RedisClient | Sentinel, ImproperlyConfigured | ConnectionError> =>
  Layer.unwrapEffect(Effect.map(configFromUrl(url, options), layer))
