/**
 * Test harness: a private Redis Cluster on loopback (3 masters + 3 replicas by default), owned by
 * a Scope. Each node is a `redis-server --cluster-enabled yes` in a temp dir of its own, started on
 * a free port; `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes` joins them. Ready
 * means every running node's `CLUSTER INFO` says `cluster_state:ok` with all 16384 slots served,
 * every node knows every other, and every replica's link to its master is up (so a failover can
 * happen at once); polled at a short interval, never a fixed sleep.
 *
 * Killing a node (SIGKILL) and waiting for the cluster to heal (a replica promoted) are handles of
 * their own, for fault tests. The cluster's `cluster-node-timeout` defaults to 1 s so a failover
 * takes about two seconds rather than fifteen.
 */
import * as ChildProcess from "node:child_process"
import type { Scope } from "effect"
import { Duration, Effect } from "effect"
import type { ServerProcess } from "./RedisServer.js"
import { HarnessError, redisServer } from "./RedisServer.js"

export interface RedisClusterOptions {
  /** Masters (default 3; the slots are split evenly by `redis-cli`). */
  readonly masters?: number
  /** Replicas per master (default 1). */
  readonly replicasPerMaster?: number
  /** `cluster-node-timeout` in ms (default 1000): how long until a silent master is failed over. */
  readonly nodeTimeoutMillis?: number
  /** Extra `redis-server` arguments for every node. */
  readonly args?: ReadonlyArray<string>
}

export interface ClusterNode {
  readonly host: "127.0.0.1"
  readonly port: number
  /** `127.0.0.1:port`. */
  readonly address: string
  readonly dir: string
  readonly process: ServerProcess
}

/** One slot range of `CLUSTER SLOTS`: the master and replicas (as ports) serving it. */
export interface SlotRange {
  readonly from: number
  readonly to: number
  readonly master: number
  readonly replicas: ReadonlyArray<number>
}

export interface RedisCluster {
  readonly nodes: ReadonlyArray<ClusterNode>
  /** Every node as `{ host, port }` (node-redis `rootNodes` shape, `url` in a socket). */
  readonly rootNodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** `redis://127.0.0.1:p1,127.0.0.1:p2,…`: every node, comma-separated (`RedisClusterBackend.layerUrl`). */
  readonly url: string
  /** The node on `port`. */
  readonly node: (port: number) => ClusterNode
  /** The slot map (from `CLUSTER NODES`) as one running node sees it. */
  readonly slots: Effect.Effect<ReadonlyArray<SlotRange>, HarnessError>
  /** The port of the master serving `slot`, as one running node sees it. */
  readonly masterOf: (slot: number) => Effect.Effect<number, HarnessError>
  /** `redis-cli -p port args…` on one node: its reply as text. */
  readonly cli: (port: number, args: ReadonlyArray<string>) => Effect.Effect<string, HarnessError>
  /** SIGKILL the node on `port` and wait for it to exit. */
  readonly kill: (port: number) => Effect.Effect<void>
  /**
   * `redis-cli --cluster reshard`: move `slots` slots from the master on `from` to the one on `to`,
   * live (keys migrated with MIGRATE, clients redirected with ASK, then MOVED). Resolves when done.
   */
  readonly reshard: (from: number, to: number, slots: number) => Effect.Effect<void, HarnessError>
  /**
   * Wait until the running nodes are all healthy again: `cluster_state:ok`, every slot served by a
   * running master (after a kill: its replica promoted). Bounded by `timeoutMillis` (default 30 s).
   */
  readonly waitHealthy: (options?: { readonly timeoutMillis?: number }) => Effect.Effect<void, HarnessError>
}

const exec = (cmd: string, args: ReadonlyArray<string>, timeoutMillis = 30_000): Effect.Effect<string, HarnessError> =>
  Effect.async<string, HarnessError>((resume) => {
    const child = ChildProcess.execFile(cmd, [...args], { timeout: timeoutMillis }, (error, stdout, stderr) => {
      resume(
        error
          ? Effect.fail(new HarnessError({ message: `${cmd} ${args.join(" ")}: ${stderr || stdout}`, cause: error }))
          : Effect.succeed(stdout)
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const cliOn = (port: number, args: ReadonlyArray<string>) =>
  exec("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], 10_000)

/**
 * The slot map from `CLUSTER NODES` (one line per node: id, ip:port@bus, flags, master id, …,
 * slot ranges), which reads the same across Redis versions: masters not flagged `fail` with their
 * ranges, and their replicas not flagged `fail`.
 */
const parseNodes = (text: string): ReadonlyArray<SlotRange> => {
  const lines = text
    .split("\n")
    .map((l) => l.trim().split(" "))
    .filter((f) => f.length >= 8)
  const portOf = (address: string) => Number(address.split("@")[0]!.split(":").pop())
  const ranges: Array<SlotRange> = []
  for (const fields of lines) {
    const flags = fields[2]!.split(",")
    if (!flags.includes("master") || flags.includes("fail")) continue
    // A replica suspected down ("fail?") is left out too: it may never be able to take over.
    const replicas = lines
      .filter((r) => r[3] === fields[0] && !r[2]!.split(",").some((f) => f === "fail" || f === "fail?"))
      .map((r) => portOf(r[1]!))
    for (const range of fields.slice(8)) {
      if (range.startsWith("[")) continue // a slot being migrated or imported
      const [from, to] = range.split("-")
      ranges.push({ from: Number(from), to: Number(to ?? from), master: portOf(fields[1]!), replicas })
    }
  }
  return ranges.sort((a, b) => a.from - b.from)
}

const infoField = (text: string, field: string): string | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${field}:`))
  return line?.slice(field.length + 1).trim()
}

/** Poll `check` every 100 ms until it holds, bounded by `timeoutMillis`. */
const until = (
  what: string,
  check: Effect.Effect<string | true, HarnessError>,
  timeoutMillis: number
): Effect.Effect<void, HarnessError> =>
  Effect.gen(function* () {
    let last: string = "not checked"
    const deadline = Date.now() + timeoutMillis
    while (Date.now() < deadline) {
      const result = yield* Effect.either(check)
      if (result._tag === "Left") last = result.left.message
      else if (result.right === true) return
      else last = result.right
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.fail(
      new HarnessError({ message: `cluster: ${what} not reached in ${timeoutMillis} ms (${last})` })
    )
  })

/** A private cluster on free loopback ports, persisting nothing; every node killed with the scope. */
export const redisCluster = (
  options: RedisClusterOptions = {}
): Effect.Effect<RedisCluster, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const masters = options.masters ?? 3
    const replicas = options.replicasPerMaster ?? 1
    const count = masters * (1 + replicas)
    const nodeTimeout = options.nodeTimeoutMillis ?? 1000

    // A private server (redisServer's flags) with cluster mode on.
    const startNode = Effect.map(
      redisServer({
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          String(nodeTimeout),
          // A replica may take over however stale: the tests kill masters on purpose.
          "--cluster-replica-validity-factor",
          "0",
          ...(options.args ?? [])
        ]
      }),
      ({ dir, host, port, process }) =>
        ({ host, port, address: `${host}:${port}`, dir, process }) as const satisfies ClusterNode
    )
    const nodes = yield* Effect.all(
      Array.from({ length: count }, () => startNode),
      { concurrency: "unbounded" }
    )
    const ports = nodes.map((n) => n.port)

    yield* exec(
      "redis-cli",
      ["--cluster", "create", ...nodes.map((n) => n.address), "--cluster-replicas", String(replicas), "--cluster-yes"],
      60_000
    )

    const running = () => nodes.filter((n) => n.process.isRunning())

    const slots = Effect.suspend(() => {
      const first = running()[0]
      return first === undefined
        ? Effect.fail(new HarnessError({ message: "cluster: no node running" }))
        : Effect.map(cliOn(first.port, ["CLUSTER", "NODES"]), parseNodes)
    })

    /** One node's view, "true" when it is healthy (for `until`), else why not. */
    const healthyOn = (node: ClusterNode, expectNodes: number): Effect.Effect<string | true, HarnessError> =>
      Effect.gen(function* () {
        const info = yield* cliOn(node.port, ["CLUSTER", "INFO"])
        if (infoField(info, "cluster_state") !== "ok")
          return `${node.address} cluster_state:${infoField(info, "cluster_state")}`
        if (infoField(info, "cluster_slots_ok") !== "16384")
          return `${node.address} cluster_slots_ok:${infoField(info, "cluster_slots_ok")}`
        if (Number(infoField(info, "cluster_known_nodes")) < expectNodes)
          return `${node.address} knows ${infoField(info, "cluster_known_nodes")} nodes`
        const repl = yield* cliOn(node.port, ["INFO", "replication"])
        if (infoField(repl, "role") === "slave" && infoField(repl, "master_link_status") !== "up") {
          return `${node.address} replica link ${infoField(repl, "master_link_status")}`
        }
        return true
      })

    const waitHealthy = (o?: { readonly timeoutMillis?: number }) =>
      until(
        "every running node healthy",
        Effect.gen(function* () {
          const live = running()
          for (const node of live) {
            const ok = yield* healthyOn(node, count)
            if (ok !== true) return ok
          }
          // Every slot served by a running master, as a running node sees it.
          const livePorts = new Set(live.map((n) => n.port))
          const ranges = yield* slots
          const covered = ranges.reduce((n, r) => n + (livePorts.has(r.master) ? r.to - r.from + 1 : 0), 0)
          return covered === 16384 ? true : `${covered} slots served by running masters`
        }),
        o?.timeoutMillis ?? 30_000
      )

    yield* waitHealthy({ timeoutMillis: 60_000 })

    const node = (port: number): ClusterNode => {
      const found = nodes.find((n) => n.port === port)
      if (found === undefined) throw new Error(`no cluster node on port ${port}`)
      return found
    }

    return {
      nodes,
      rootNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
      url: `redis://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
      node,
      slots,
      masterOf: (slot) =>
        Effect.flatMap(slots, (ranges) => {
          const range = ranges.find((r) => r.from <= slot && slot <= r.to)
          return range === undefined
            ? Effect.fail(new HarnessError({ message: `cluster: slot ${slot} not served` }))
            : Effect.succeed(range.master)
        }),
      cli: cliOn,
      kill: (port) => node(port).process.kill,
      reshard: (from, to, count) =>
        Effect.gen(function* () {
          const fromId = (yield* cliOn(from, ["CLUSTER", "MYID"])).trim()
          const toId = (yield* cliOn(to, ["CLUSTER", "MYID"])).trim()
          yield* exec(
            "redis-cli",
            [
              "--cluster",
              "reshard",
              `127.0.0.1:${from}`,
              "--cluster-from",
              fromId,
              "--cluster-to",
              toId,
              "--cluster-slots",
              String(count),
              "--cluster-yes",
              "--cluster-pipeline",
              "100"
            ],
            120_000
          )
        }),
      waitHealthy
    } satisfies RedisCluster
  })
