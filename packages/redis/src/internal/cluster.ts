/**
 * The command side of a `RedisClient` over a Redis Cluster (node-redis v4's `createCluster`), for
 * `RedisClusterBackend`:
 *
 * - `Connections`: one node-redis cluster object (a connection per master, slot map from `CLUSTER
 *   SLOTS`) opened on first use, replaced after a connection-level failure, closed with the scope.
 *   node-redis follows MOVED and ASK by itself (re-reading the slot map on MOVED) but never
 *   notices a dead master: its node clients do not reconnect (`reconnectStrategy: false`, forced
 *   here as on every client of this package), so a command to a killed master fails as a lost
 *   connection, and the whole cluster object is dropped and discovered again from the root nodes
 *   on the next call (retried under the policy: while the failover is in progress the discovery
 *   fails or the cluster answers CLUSTERDOWN). It drives the shared batcher through its `Link`.
 *   A credential provider is asked before each cluster object is opened, its answer used by every
 *   node client of that object. With a socket timeout, a watchdog fails the commands of a node
 *   that stops answering (a frozen process, a hung host): see `watchdog`.
 * - `commandsOf`: `RedisClient.Commands` over the cluster. node-redis routes a command, a script
 *   and an MGET by its FIRST key only, so anything with keys in several slots is split here. MGET
 *   by NODE: the keys grouped by the master node-redis' slot map gives their slot, each group read
 *   with one `Scripts.mgetOnNode` call on that node (Redis 7's `allow-cross-slot-keys`: keys of
 *   any slots the node serves), all sent at once, replies reassembled in order; a group that meets
 *   any error reply (MOVED, ASK, TRYAGAIN during a reshard, a failover) is read again per slot, one
 *   MGET per slot, where node-redis follows the redirections. Random task ids fall in as many slots
 *   as there are keys, so per slot would be a command per key; per node it is one per master.
 *   DEL and a `perKey` script (the store script) by slot (one call per slot, all sent at once).
 *   Other multi-key calls go to the first key's node as they are, where the server refuses keys of
 *   several slots with CROSSSLOT.
 * - `topology`: the cluster's `cluster_current_epoch`, which every failover (and slot handover)
 *   increases: the subscriber side polls it to resync after a topology change.
 *
 * @internal
 */
import calculateSlot from "cluster-key-slot"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { CommandError } from "@effect-celery/core/Errors"
import { ConnectionError } from "@effect-celery/core/Errors"
import { createCluster, ErrorReply } from "redis"
import type { Commands, Reply, Script } from "../RedisClient.js"
import { MGET_CHUNK } from "../RedisClient.js"
import type { NodeRedisOptions } from "../RedisConfig.js"
import type { Link } from "./batcher.js"
import { connectError, connectionReason, messageOf } from "./errors.js"
import * as Lifecycle from "./lifecycle.js"
import * as Scripts from "./scripts.js"

/** A node-redis cluster as `createCluster()` returns it. */
export type NodeRedisCluster = ReturnType<typeof createCluster>

/** A master of node-redis' slot map (`cluster.slots[slot].master`). */
type Master = NodeRedisCluster["masters"][number]

/** A root node: where the slot map is first read from. */
export interface RootNode {
  readonly host: string
  readonly port: number
}

/** CRC16-CCITT (XModem), the hash of cluster slots, by byte. */
const CRC16 = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1
    table[i] = crc & 0xffff
  }
  return table
})()

/**
 * The slot of a key (CRC16 of the key, or of its `{hash tag}`), 0–16383. An ASCII key (every
 * Celery key of a task id) is hashed from its char codes, about twice as fast as `cluster-key-slot`,
 * which first copies the key into a UTF-8 array: a spread read hashes every key it asks for.
 */
export const slotOf = (key: string): number => {
  let crc = 0
  let tagCrc = 0
  let tagStart = -1
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c >= 0x80) return calculateSlot(key)
    if (tagStart === -1) {
      if (c === 0x7b) tagStart = i + 1
    } else if (c !== 0x7d) tagCrc = (CRC16[(c ^ (tagCrc >> 8)) & 0xff]! ^ (tagCrc << 8)) & 0xffff
    else if (i !== tagStart) return tagCrc & 0x3fff
    crc = (CRC16[(c ^ (crc >> 8)) & 0xff]! ^ (crc << 8)) & 0xffff
  }
  return crc & 0x3fff
}

export interface Options {
  readonly rootNodes: ReadonlyArray<RootNode>
  /** Options of every node client (TLS, AUTH, timeouts), with this package's forced ones. */
  readonly defaults: NodeRedisOptions
  readonly uri: string
  readonly connectTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
  readonly failFast?: boolean | undefined
  readonly additionalConnectionErrors?: ReadonlyArray<string> | undefined
  /** `socket_timeout`: a command with no reply for this long fails with `ConnectionError("Timeout")`. */
  readonly socketTimeout?: Duration.Duration | undefined
  /**
   * Fills in the credentials of `defaults` before each cluster object is opened (a credential
   * provider asked afresh), so a reconnect after a rotation uses the new token.
   */
  readonly credentials?: ((defaults: NodeRedisOptions) => Effect.Effect<NodeRedisOptions, ConnectionError>) | undefined
}

/** Commands sent during one watchdog period and not answered yet. */
interface Period {
  pending: number
  /** When the period ended (Clock millis); commands of it have waited at least since then. */
  endedAt: number
}

/** One open cluster object. */
export interface Connection extends Lifecycle.Managed {
  readonly cluster: NodeRedisCluster
  readonly commands: Commands
  /** The period new commands count in (see `watchdog`). */
  period: Period
}

/** The command connection manager over a cluster, as the batcher and the client use it. */
export interface Connections extends Link<Connection, Commands> {
  /** The cluster object, connecting first if needed. */
  readonly acquire: Effect.Effect<Connection, ConnectionError>
  /** Forget `conn` and close it in the background: the next call discovers the cluster again. */
  readonly drop: (conn: Connection) => Effect.Effect<void>
}

/** Close every node connection node-redis knows of now (their pending commands fail). Never throws. */
const destroyCluster = (cluster: NodeRedisCluster): void => {
  for (const node of cluster.nodeByAddress.values()) {
    const client = node.client
    if (client !== undefined && !(client instanceof Promise) && client.isOpen) client.disconnect().catch(() => {})
  }
  if (cluster.isOpen) cluster.disconnect().catch(() => {})
}

/** Close every node client node-redis knows of, then the cluster itself; never fails, bounded. */
const closeCluster = (cluster: NodeRedisCluster, timeout: Duration.Duration): Effect.Effect<void> =>
  Effect.promise(() => (cluster.isOpen ? cluster.quit().catch(() => undefined) : Promise.resolve(undefined))).pipe(
    Effect.interruptible,
    Effect.timeoutOption(timeout),
    // A failed discovery can leave node clients the cluster no longer lists as shards.
    Effect.zipRight(Effect.sync(() => destroyCluster(cluster)))
  )

/** Open a cluster object (slot map read, a connection to every master) within the connect timeout. */
const connectCluster = (options: Options): Effect.Effect<NodeRedisCluster, ConnectionError, Scope.Scope> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const runSync = Runtime.runSync(runtime)
    return Effect.acquireRelease(
      Effect.async<NodeRedisCluster, ConnectionError>((resume) => {
        let cluster: NodeRedisCluster
        try {
          cluster = createCluster({
            rootNodes: options.rootNodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
            defaults: options.defaults,
            // Reads go to masters: a replica may not have a write acknowledged a moment ago.
            useReplicas: false
          })
        } catch (cause) {
          resume(Effect.fail(connectError(options.uri, cause)))
          return
        }
        // A rejected login or TLS handshake on a root node: node-redis emits it as an `error` event
        // and, once every root node failed, rejects the connect with RootNodesUnavailableError,
        // which says nothing of why. The connect fails with it instead, typed Auth / Tls (not
        // retried), as on one server.
        let refused: unknown
        let settled = false
        // node-redis rethrows an unhandled `error` event (a node's socket error) as a crash.
        cluster.on("error", (cause: unknown) => {
          const reason = connectionReason(cause, "connect")
          if (!settled && (reason === "Auth" || reason === "Tls")) refused = cause
          try {
            runSync(Effect.logDebug(`node-redis cluster ${options.uri}: ${messageOf(cause)}`))
          } catch {
            // logging must never turn a socket event into a crash
          }
        })
        cluster.connect().then(
          () => {
            settled = true
            resume(Effect.succeed(cluster))
          },
          (cause: unknown) => {
            settled = true
            resume(
              Effect.zipRight(
                closeCluster(cluster, options.closeTimeout),
                Effect.fail(connectError(options.uri, refused ?? cause))
              )
            )
          }
        )
        return Effect.suspend(() => (settled ? Effect.void : closeCluster(cluster, Duration.zero)))
      }).pipe(
        Effect.interruptible,
        Effect.timeoutFail({
          duration: options.connectTimeout,
          onTimeout: () =>
            new ConnectionError({
              reason: "Timeout",
              message: `Timeout connecting to ${options.uri} (${Duration.format(options.connectTimeout)})`
            })
        })
      ),
      (cluster) => closeCluster(cluster, options.closeTimeout)
    )
  })

/**
 * The manager, in the layer's scope: connects on the first call (or now, with `failFast`), one
 * connect in flight for all callers, and on close refuses new connections before the open one is
 * closed. The same shape as the single-server manager (`connection.ts`), over a cluster object.
 */
export const make = (options: Options): Effect.Effect<Connections, ConnectionError, Scope.Scope> =>
  Effect.gen(function* () {
    const timeoutMillis = options.socketTimeout === undefined ? undefined : Duration.toMillis(options.socketTimeout)

    /**
     * The single server's watchdog compares replies across ticks, but on a cluster the other
     * nodes' replies say nothing of a frozen one, so here the age of the commands counts: they
     * are counted per period of a quarter of the timeout, and when a period that ended `millis`
     * ago still has a command unanswered, that command has waited at least `millis` (at most a
     * period more): the whole cluster object is destroyed, failing its pending commands with
     * `Timeout`, and the next call discovers the cluster again. A counter per period, not a
     * record per command, keeps the send path's cost to an increment and a decrement.
     */
    const watchdog = (
      conn: Connection,
      millis: number,
      drop: (conn: Connection) => Effect.Effect<void>
    ): Effect.Effect<void> => {
      const periodMillis = Math.max(10, Math.floor(millis / 4))
      const closedPeriods: Array<Period> = []
      const tick = Effect.map(Clock.currentTimeMillis, (now) => {
        const ended = conn.period
        ended.endedAt = now
        if (ended.pending > 0) closedPeriods.push(ended)
        conn.period = { pending: 0, endedAt: 0 }
        while (closedPeriods.length > 0 && closedPeriods[0]!.pending === 0) closedPeriods.shift()
        const oldest = closedPeriods[0]
        if (oldest !== undefined && now - oldest.endedAt >= millis) {
          conn.timedOut = true
          destroyCluster(conn.cluster)
          return true
        }
        return false
      })
      return Effect.asVoid(
        Effect.repeat(Effect.zipRight(Effect.sleep(Duration.millis(periodMillis)), tick), {
          until: (timedOut) => timedOut
        }).pipe(Effect.zipRight(Effect.suspend(() => drop(conn))))
      )
    }

    const open = (scope: Scope.CloseableScope, drop: (conn: Connection) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const defaults =
          options.credentials === undefined ? options.defaults : yield* options.credentials(options.defaults)
        const cluster = yield* connectCluster({ ...options, defaults }).pipe(Scope.extend(scope))
        const conn: Connection = {
          cluster,
          commands: commandsOf(cluster),
          scope,
          dropped: false,
          period: { pending: 0, endedAt: 0 },
          timedOut: false
        }
        if (timeoutMillis !== undefined && timeoutMillis > 0)
          yield* watchdog(conn, timeoutMillis, drop).pipe(Effect.interruptible, Effect.forkIn(scope))
        return conn
      }).pipe((effect) =>
        // The cluster is named by its first root node (the slot map may come from another).
        Lifecycle.withConnectSpan(
          effect,
          0,
          options.rootNodes[0] !== undefined
            ? { address: options.rootNodes[0].host, port: options.rootNodes[0].port }
            : undefined
        )
      )

    const lifecycle = yield* Lifecycle.make<Connection>({
      open,
      isReady: (conn) => conn.cluster.isOpen,
      closedError: () =>
        new ConnectionError({ reason: "Shutdown", message: `RedisClusterBackend ${options.uri} is closed` }),
      socketTimeoutMillis: timeoutMillis,
      additionalConnectionErrors: options.additionalConnectionErrors
    })
    const { acquire, drop, failWith } = lifecycle

    const send = <A>(
      conn: Connection,
      command: string,
      f: (commands: Commands) => Promise<A>,
      onSuccess: (a: A) => void,
      onFailure: (failure: Effect.Effect<never, ConnectionError | CommandError>, isCommandError: boolean) => void
    ): void => {
      const fail = (cause: unknown) => {
        const failure = failWith(conn, command, cause)
        onFailure(failure.effect, failure.isCommandError)
      }
      let promise: Promise<A>
      try {
        promise = Promise.resolve(f(conn.commands))
      } catch (cause) {
        fail(cause)
        return
      }
      const period = conn.period
      period.pending++
      promise.then(
        (a) => {
          period.pending--
          onSuccess(a)
        },
        (cause: unknown) => {
          period.pending--
          fail(cause)
        }
      )
    }

    const execute = <A>(
      command: string,
      f: (commands: Commands) => Promise<A>
    ): Effect.Effect<A, ConnectionError | CommandError> =>
      Effect.async<A, ConnectionError | CommandError>((resume) => {
        const run = (conn: Connection, k: typeof resume) => send(conn, command, f, (a) => k(Effect.succeed(a)), k)
        const conn = lifecycle.current
        if (conn !== undefined && conn.cluster.isOpen) run(conn, resume)
        else
          resume(
            Effect.flatMap(acquire, (fresh) => Effect.async<A, ConnectionError | CommandError>((k) => run(fresh, k)))
          )
      })

    if (options.failFast === true) yield* acquire

    return { live: lifecycle.live, failWith, send, execute, acquire, drop }
  })

// ---------------------------------------------------------------------------------------------
// commands over a cluster, split by slot
// ---------------------------------------------------------------------------------------------

/** Commands with no key: node-redis sends them to any node. */
const KEYLESS: ReadonlySet<string> = new Set([
  "PING",
  "INFO",
  "TIME",
  "ECHO",
  "CLIENT",
  "CONFIG",
  "SCRIPT",
  "CLUSTER",
  "PUBSUB",
  "DBSIZE",
  "FLUSHALL",
  "FLUSHDB",
  "COMMAND",
  "ROLE",
  "LASTSAVE",
  "MEMORY",
  "SLOWLOG",
  "LATENCY",
  "ACL",
  "WAIT"
])

/** The key node-redis routes `args` by (for EVAL/EVALSHA the first of its keys), if any. */
export const firstKeyOf = (args: ReadonlyArray<string>): string | undefined => {
  const name = (args[0] ?? "").toUpperCase()
  if (name === "EVAL" || name === "EVALSHA" || name === "EVAL_RO" || name === "EVALSHA_RO") {
    return Number(args[2]) > 0 ? args[3] : undefined
  }
  return KEYLESS.has(name) ? undefined : args[1]
}

/** The indices of `keys` by slot, in first-seen order (a single group when they share one). */
export const groupBySlot = (keys: ReadonlyArray<string>): Array<Array<number>> => {
  if (keys.length === 0) return []
  const first = slotOf(keys[0]!)
  let i = 1
  while (i < keys.length && slotOf(keys[i]!) === first) i++
  if (i === keys.length) return [Array.from(keys, (_, j) => j)]
  const bySlot = new Map<number, Array<number>>()
  for (let j = 0; j < keys.length; j++) {
    const slot = slotOf(keys[j]!)
    const group = bySlot.get(slot)
    if (group === undefined) bySlot.set(slot, [j])
    else group.push(j)
  }
  return Array.from(bySlot.values())
}

const isNoScript = (cause: unknown): boolean => cause instanceof ErrorReply && cause.message.startsWith("NOSCRIPT")

/**
 * Per-key scripts that only read, with their variant for keys of several slots on one node (the
 * keys as ARGV): run per node, as MGET is (a watch of many missing keys checks them all, which per
 * slot was a call for almost every key). The store script writes and publishes: one call per slot.
 */
const NODE_VARIANTS: ReadonlyMap<Script, Script> = new Map([[Scripts.nonString, Scripts.nonStringOnNode]])

/**
 * `Commands` over a cluster. Each call is routed by its first key; an MGET whose keys span slots is
 * split into one call per node (see `mget`), `perKey` scripts into one call per slot, sent at
 * once, their replies put back in the asked order.
 */
export const commandsOf = (cluster: NodeRedisCluster): Commands => {
  const send = <A = Reply>(key: string | undefined, args: ReadonlyArray<string>): Promise<A> =>
    cluster.sendCommand<A>(key, false, [...args])

  /** EVALSHA on the keys' node; on NOSCRIPT (a fresh or promoted node) EVAL, which also caches it. */
  const evalOn = async (script: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>): Promise<Reply> => {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await send(keys[0], ["EVALSHA", script.sha, ...tail])
    } catch (cause) {
      if (!isNoScript(cause)) throw cause
      return send(keys[0], ["EVAL", script.source, ...tail])
    }
  }

  /**
   * The values of `keys[i]` for `i` of `group` into `out`: one MGET per slot (MGET even for one key:
   * a GET would fail on a non-string, which MGET reads as nil).
   */
  const mgetBySlot = (
    keys: ReadonlyArray<string>,
    group: ReadonlyArray<number>,
    out: Array<string | null>
  ): Promise<unknown> =>
    Promise.all(
      groupBySlot(group.map((i) => keys[i]!)).map((inGroup) => {
        const indices = inGroup.map((j) => group[j]!)
        return send<ReadonlyArray<string | null>>(keys[indices[0]!], ["MGET", ...indices.map((i) => keys[i]!)]).then(
          (values) => {
            for (let j = 0; j < indices.length; j++) out[indices[j]!] = values[j] ?? null
          }
        )
      })
    )

  /**
   * One call of a node script (`Scripts.mgetOnNode`, `Scripts.nonStringOnNode`: the keys as ARGV,
   * a reply entry per key) on `node`, its reply handed to `write`. Any error reply (a slot moved or
   * migrating since the map was read, a failover, a server without the script flags) runs
   * `perSlot` instead, where node-redis follows MOVED and ASK: the script is never trusted after
   * an error, so a reshard costs a round trip, never a wrong value.
   */
  const onNode = async (
    node: Master,
    script: Script,
    args: ReadonlyArray<string>,
    write: (values: ReadonlyArray<unknown>) => void,
    perSlot: () => Promise<unknown>
  ): Promise<unknown> => {
    const client = await cluster.nodeClient(node)
    // A client node-redis closed (the node left the map): the per-slot way routes afresh.
    if (!client.isOpen) return perSlot()
    let values: unknown
    try {
      try {
        values = await client.sendCommand<unknown>(["EVALSHA", script.sha, "0", ...args])
      } catch (cause) {
        if (!isNoScript(cause)) throw cause
        values = await client.sendCommand<unknown>(["EVAL", script.source, "0", ...args])
      }
    } catch (cause) {
      if (cause instanceof ErrorReply) return perSlot()
      throw cause
    }
    if (!Array.isArray(values) || values.length !== args.length)
      throw new Error(`unexpected reply of a node script: ${String(values)}`)
    write(values)
    return undefined
  }

  /**
   * The indices of `keys` by the master node-redis' slot map puts their slot on (`undefined` for
   * a slot the map lacks), or nothing when they all share one slot.
   */
  const byNode = (keys: ReadonlyArray<string>): Map<Master | undefined, Array<number>> | undefined => {
    const first = slotOf(keys[0]!)
    let i = 1
    while (i < keys.length && slotOf(keys[i]!) === first) i++
    if (i === keys.length) return undefined
    const map = cluster.slots
    const groups = new Map<Master | undefined, Array<number>>()
    for (let j = 0; j < keys.length; j++) {
      const node = map[j < i ? first : slotOf(keys[j]!)]?.master
      const group = groups.get(node)
      if (group === undefined) groups.set(node, [j])
      else group.push(j)
    }
    return groups
  }

  /**
   * `perNode` for each node's keys in chunks of `MGET_CHUNK`, all at once; a lone key on a node and
   * keys of a slot the map lacks go to `perSlot`.
   */
  const acrossNodes = (
    groups: Map<Master | undefined, Array<number>>,
    perNode: (node: Master, chunk: ReadonlyArray<number>) => Promise<unknown>,
    perSlot: (group: ReadonlyArray<number>) => Promise<unknown>
  ): Promise<unknown> => {
    const calls: Array<Promise<unknown>> = []
    for (const [node, group] of groups) {
      if (node === undefined || group.length === 1) calls.push(perSlot(group))
      else
        for (let at = 0; at < group.length; at += MGET_CHUNK)
          calls.push(perNode(node, group.slice(at, at + MGET_CHUNK)))
    }
    return Promise.all(calls)
  }

  /**
   * MGET across slots: the keys grouped by master, each group read with one `Scripts.mgetOnNode`
   * call a chunk, all sent at once. Keys of one slot go as one MGET.
   */
  const mget = async (keys: ReadonlyArray<string>): Promise<ReadonlyArray<string | null>> => {
    if (keys.length === 0) return []
    const groups = byNode(keys)
    if (groups === undefined) return send(keys[0], ["MGET", ...keys])
    const out = new Array<string | null>(keys.length)
    await acrossNodes(
      groups,
      (node, chunk) =>
        onNode(
          node,
          Scripts.mgetOnNode,
          chunk.map((i) => keys[i]!),
          (values) => {
            for (let j = 0; j < chunk.length; j++) out[chunk[j]!] = (values[j] as string | null | undefined) ?? null
          },
          () => mgetBySlot(keys, chunk, out)
        ),
      (group) => mgetBySlot(keys, group, out)
    )
    return out
  }

  /** A `perKey` script over keys of several slots, one call per slot, replies into `out`. */
  const perKeyBySlot = (
    script: Script,
    perKey: number,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    indices: ReadonlyArray<number>,
    out: Array<Reply>
  ): Promise<unknown> => {
    // KEYS[i] pairs with ARGV[perKey + i] and the reply has one entry per key.
    const shared = args.slice(0, perKey)
    return Promise.all(
      groupBySlot(indices.map((i) => keys[i]!)).map((inGroup) => {
        const group = inGroup.map((j) => indices[j]!)
        return evalOn(
          script,
          group.map((i) => keys[i]!),
          [...shared, ...group.map((i) => args[perKey + i]!)]
        ).then((reply) => {
          if (!Array.isArray(reply)) throw new Error(`unexpected reply of a per-key script: ${String(reply)}`)
          for (let j = 0; j < group.length; j++) out[group[j]!] = (reply as ReadonlyArray<Reply>)[j] ?? null
        })
      })
    )
  }

  const runScript = async (
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>
  ): Promise<Reply> => {
    const perKey = script.perKey
    if (perKey === undefined || keys.length <= 1) return evalOn(script, keys, args)
    const groups = byNode(keys)
    if (groups === undefined) return evalOn(script, keys, args)
    const out = new Array<Reply>(keys.length)
    const nodeScript = NODE_VARIANTS.get(script)
    if (nodeScript !== undefined)
      await acrossNodes(
        groups,
        (node, chunk) =>
          onNode(
            node,
            nodeScript,
            chunk.map((i) => keys[i]!),
            (values) => {
              for (let j = 0; j < chunk.length; j++) out[chunk[j]!] = (values[j] as Reply | undefined) ?? null
            },
            () => perKeyBySlot(script, perKey, keys, args, chunk, out)
          ),
        (group) => perKeyBySlot(script, perKey, keys, args, group, out)
      )
    else
      await perKeyBySlot(
        script,
        perKey,
        keys,
        args,
        keys.map((_, i) => i),
        out
      )
    return out
  }

  return {
    command: (args) => send(firstKeyOf(args), args),
    get: (key) => send<string | null>(key, ["GET", key]),
    mget,
    runScript
  }
}

/** `DEL keys…` over a cluster: one DEL per slot, the counts summed. */
export const del = (cluster: NodeRedisCluster, keys: ReadonlyArray<string>): Promise<number> =>
  Promise.all(
    groupBySlot(keys).map((group) =>
      cluster.sendCommand<number>(keys[group[0]!], false, ["DEL", ...group.map((i) => keys[i]!)])
    )
  ).then((counts) => counts.reduce((a, b) => a + b, 0))

/** `cluster_current_epoch` of a `CLUSTER INFO` reply (it grows with every failover and slot handover). */
export const epochOf = (info: string): number => {
  const match = /cluster_current_epoch:(\d+)/.exec(info)
  return match === null ? -1 : Number(match[1])
}
