/**
 * Redis Cluster rows: store, get, getAll of 1,000 ready results, wake-up and a fan-in of 10,000
 * (one watch of 10,000 tasks, then 10,000 stores by 100 callers: the time from the last store issued
 * to the last ready state delivered, and from the first store issued) through
 *   single       — `RedisBackend.layer` on one redis-server,
 *   single-slot  — `RedisClusterBackend`, every key under `{celery}:` (one master serves it all),
 *   spread       — `RedisClusterBackend`, plain keys over 3 masters (getAll: one script call per
 *                  master, see `Scripts.mgetOnNode`).
 * One redis-server and one 3-master + 3-replica cluster on free loopback ports, the modes
 * interleaved (rotated order) `--reps` times; a markdown table: median (min–max) and the ratio
 * to `single`.
 * Then getAll alone, finer grained: every mode built at once plus node-redis' cluster client doing
 * the spread getAll's wire work (per node, as ours; per slot, as ours was), timed in turns of
 * `--turn` calls rotating over `--rounds` rounds, the ratio to `single` taken per round (the
 * machine's load changes between rounds, rarely within one), with the CPU time per call of this
 * process and of the servers read (INFO cpu: the single server, or all six cluster nodes), which
 * load changes less than throughput. `--getall-only`: that table alone.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/cluster.ts [--reps 3] [--n 10000]
 *   [--getalls 100] [--fanin 10000] [--rounds 30] [--turn 10] [--getall-only]
 */
import { randomUUID } from "node:crypto"
import * as Os from "node:os"
import calculateSlot from "cluster-key-slot"
import { Context, Deferred, Effect, Either, Layer, Stream } from "effect"
import { createClient, createCluster } from "redis"
import { ResultBackend, ResultConsumer, TaskState } from "@effect-celery/core"
import * as Keys from "@effect-celery/core/Keys"
import { RedisBackend, RedisClusterBackend } from "@effect-celery/redis"
import * as Scripts from "../packages/redis/src/internal/scripts.js"
import { redisCluster } from "../test-support/RedisCluster.js"
import { callers, runMain, wakeUp } from "./effects.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const flag = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const reps = flag("--reps", 3)
const n = flag("--n", 10000)
const getAlls = flag("--getalls", 100)
const wakeups = flag("--wakeups", 200)
const fanIn = flag("--fanin", 10000)
const rounds = flag("--rounds", 30)
const turn = flag("--turn", 10)
const onlyGetAll = args.includes("--getall-only")
const GETALL = 1000

type Mode = "single" | "single-slot" | "spread"
const modes: ReadonlyArray<Mode> = ["single", "single-slot", "spread"]
type Row = { store: number; get: number; getAll: number; wake: number; fanIn: number; fanInTotal: number }

/**
 * One watch of `fanIn` new tasks, then as many stores by 100 callers: ms from the last store issued
 * (and from the first) to the last ready state delivered. The watch is established when it delivers the stored state of a
 * task stored beforehand (the read that follows the SUBSCRIBEs), so no store races the subscription.
 */
const fanInMs = (backend: ResultBackend.ResultBackend, consumer: ResultConsumer.ResultConsumer) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ids = Array.from({ length: fanIn }, () => randomUUID())
      const sentinel = randomUUID()
      yield* backend.markAsDone(sentinel, 0)
      const synced = yield* Deferred.make<void>()
      const allReady = yield* Deferred.make<number>()
      let ready = 0
      yield* consumer.watch([...ids, sentinel]).pipe(
        Stream.runForEach((e) => {
          if (Either.isLeft(e) || !TaskState.isReady(e.right.status)) return Effect.void
          if (e.right.taskId === sentinel) return Deferred.succeed(synced, undefined)
          return ++ready === fanIn ? Deferred.succeed(allReady, performance.now()) : Effect.void
        }),
        Effect.forkScoped
      )
      yield* Deferred.await(synced)
      let lastStore = 0
      const firstStore = performance.now()
      yield* callers(100, fanIn, (i) =>
        Effect.suspend(() => {
          if (i === fanIn - 1) lastStore = performance.now()
          return backend.markAsDone(ids[i]!, i)
        })
      )
      const done = yield* Deferred.await(allReady)
      return { fanIn: done - lastStore, fanInTotal: done - firstStore }
    })
  )

const measure = (layer: LayerOf) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* Layer.build(layer)
      const backend = Context.get(ctx, ResultBackend.ResultBackend)
      const consumer = Context.get(ctx, ResultConsumer.ResultConsumer)
      const ids = Array.from({ length: n }, () => randomUUID())
      yield* callers(100, 2000, (i) => backend.markAsDone(`warm-${i}`, i))
      const t0 = performance.now()
      yield* callers(100, n, (i) => backend.markAsDone(ids[i]!, { i }))
      const store = n / ((performance.now() - t0) / 1000)
      const t1 = performance.now()
      yield* callers(100, n, (i) => backend.get(ids[i]!))
      const get = n / ((performance.now() - t1) / 1000)
      const batch = ids.slice(0, GETALL)
      yield* callers(1, 10, () => backend.getAll(batch))
      const t2 = performance.now()
      yield* callers(1, getAlls, () => backend.getAll(batch))
      const getAll = getAlls / ((performance.now() - t2) / 1000)
      const lat: Array<number> = []
      for (let i = 0; i < wakeups; i++) {
        lat.push((yield* wakeUp(backend, i)).millis)
      }
      lat.sort((a, b) => a - b)
      const fan = yield* fanInMs(backend, consumer)
      return { store, get, getAll, wake: lat[Math.floor(lat.length / 2)]!, ...fan } satisfies Row
    })
  )

/** A stored meta as the backend writes it (the raw reads fetch as many bytes as ours). */
const metaOf = (id: string) =>
  JSON.stringify({
    status: "SUCCESS",
    result: 1,
    traceback: null,
    children: [],
    date_done: new Date().toISOString(),
    task_id: id
  })

/** The library's own node script (keys as ARGV, any slots of the node): the same server work. */
const MGET_ON_NODE = Scripts.mgetOnNode.source

/**
 * node-redis' cluster client doing the spread getAll's wire work on GETALL stored metas, two ways:
 * per node (ours: the keys grouped by their slot's master, one script call per master, all sent at
 * once) and per slot (ours before: one MGET per slot, a GET for a lone key). No decoding.
 */
const rawClient = (rootNodes: ReadonlyArray<{ host: string; port: number }>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const raw = createCluster({ rootNodes: rootNodes.map((r) => ({ socket: r })) })
      raw.on("error", () => {})
      await raw.connect()
      const keys = Array.from({ length: GETALL }, () => `${Keys.TASK_KEYPREFIX}${randomUUID()}`)
      await Promise.all(keys.map((k) => raw.set(k, metaOf(k))))
      const sha = String(await raw.sendCommand(undefined, false, ["SCRIPT", "LOAD", MGET_ON_NODE]))
      for (const m of raw.masters) await (await raw.nodeClient(m)).sendCommand(["SCRIPT", "LOAD", MGET_ON_NODE])
      const perNode = async () => {
        const byNode = new Map<(typeof raw.masters)[number], Array<string>>()
        for (const k of keys) {
          const m = raw.slots[calculateSlot(k)]!.master
          const g = byNode.get(m)
          if (g === undefined) byNode.set(m, [k])
          else g.push(k)
        }
        return Promise.all(
          Array.from(byNode, async ([m, g]) => (await raw.nodeClient(m)).sendCommand(["EVALSHA", sha, "0", ...g]))
        )
      }
      const perSlot = () => {
        const bySlot = new Map<number, Array<string>>()
        for (const k of keys) {
          const s = calculateSlot(k)
          const g = bySlot.get(s)
          if (g === undefined) bySlot.set(s, [k])
          else g.push(k)
        }
        return Promise.all(Array.from(bySlot.values(), (g) => (g.length === 1 ? raw.get(g[0]!) : raw.mGet(g))))
      }
      return { raw, perNode, perSlot }
    }),
    ({ raw }) => Effect.promise(() => raw.disconnect())
  )

/**
 * getAll of GETALL ready results in every mode (and the raw reads), all built at once and timed in
 * turns of `turn` calls, rotating the order each round: the ratio to `single` is taken per round,
 * so load that changes between rounds cancels out.
 */
const interleavedGetAll = (
  layerOf: (mode: Mode) => LayerOf,
  singlePort: number,
  rootNodes: ReadonlyArray<{ host: string; port: number }>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      // Server CPU seconds (INFO cpu, user + sys) of the single server and of every cluster node.
      const infoClients = yield* Effect.acquireRelease(
        Effect.promise(() =>
          Promise.all(
            [{ host: "127.0.0.1", port: singlePort }, ...rootNodes].map(async (node) => {
              const c = createClient({ socket: node })
              c.on("error", () => {})
              await c.connect()
              return c
            })
          )
        ),
        (cs) => Effect.promise(() => Promise.all(cs.map((c) => c.disconnect())))
      )
      const cpuOf = (clients: typeof infoClients) =>
        Effect.promise(() =>
          Promise.all(clients.map((c) => c.info("cpu"))).then((infos) =>
            infos.reduce((sum, info) => {
              const user = /used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? "0"
              const sys = /used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? "0"
              return sum + Number(user) + Number(sys)
            }, 0)
          )
        )
      const serversOf = (name: string) => (name === "single" ? infoClients.slice(0, 1) : infoClients.slice(1))
      const runners = new Map<string, Effect.Effect<unknown, unknown>>()
      for (const mode of modes) {
        const backend = Context.get(yield* Layer.build(layerOf(mode)), ResultBackend.ResultBackend)
        const ids = Array.from({ length: GETALL }, () => randomUUID())
        yield* callers(100, GETALL, (i) => backend.markAsDone(ids[i]!, { i }))
        runners.set(mode, backend.getAll(ids))
      }
      const raw = yield* rawClient(rootNodes)
      runners.set("raw node-redis, per node (one script call per master)", Effect.promise(raw.perNode))
      runners.set("raw node-redis, per slot (one MGET per slot)", Effect.promise(raw.perSlot))
      const names = Array.from(runners.keys())
      const rates = new Map(names.map((name) => [name, new Array<number>()]))
      const cpu = new Map(names.map((name) => [name, { client: 0, server: 0 }]))
      for (const run of runners.values()) for (let i = 0; i < 10; i++) yield* run
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + r) % names.length]!
          const run = runners.get(name)!
          const server0 = yield* cpuOf(serversOf(name))
          const client0 = process.cpuUsage()
          const t = performance.now()
          for (let i = 0; i < turn; i++) yield* run
          rates.get(name)!.push(turn / ((performance.now() - t) / 1000))
          const client = process.cpuUsage(client0)
          const server = (yield* cpuOf(serversOf(name))) - server0
          const used = cpu.get(name)!
          used.client += (client.user + client.system) / (rounds * turn)
          used.server += (server * 1e6) / (rounds * turn)
        }
      }
      return { rates, cpu }
    })
  )

type LayerOf = Layer.Layer<ResultBackend.ResultBackend | ResultConsumer.ResultConsumer, unknown>

const main = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(
    Effect.promise(() => startRedis()),
    (s) => Effect.sync(s.stop)
  )
  const cluster = yield* redisCluster()
  const layerOf = (mode: Mode) =>
    mode === "single"
      ? RedisBackend.layer({ host: "127.0.0.1", port: server.port })
      : RedisClusterBackend.layer(
          { rootNodes: cluster.rootNodes },
          mode === "single-slot"
            ? { layout: "single-slot", keys: { globalKeyprefix: "{celery}:" } }
            : { layout: "spread" }
        )
  const med = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2))
  const span = (xs: ReadonlyArray<number>) => `${fmt(med(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
  const out: Array<string> = []
  if (!onlyGetAll) {
    const results: Record<Mode, Array<Row>> = { single: [], "single-slot": [], spread: [] }
    for (let r = 0; r < reps; r++) {
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(k + r) % modes.length]!
        const res = yield* measure(layerOf(mode))
        results[mode].push(res)
        process.stderr.write(`rep ${r + 1} ${mode}: ${JSON.stringify(res)}\n`)
      }
    }
    const cell = (mode: Mode, key: keyof Row) => {
      const xs = results[mode].map((x) => x[key])
      return `${span(xs)} ×${(med(xs) / med(results.single.map((x) => x[key]))).toFixed(2)}`
    }
    out.push(
      `| mode | store ops/s | get ops/s | getAll(1,000) calls/s | wake-up p50 ms | fan-in of ${fmt(fanIn)}: last store → last delivery ms | fan-in: first store → last delivery ms |`,
      `|---|---|---|---|---|---|---|`,
      ...modes.map(
        (m) =>
          `| ${m} | ${cell(m, "store")} | ${cell(m, "get")} | ${cell(m, "getAll")} | ${cell(m, "wake")} | ${cell(m, "fanIn")} | ${cell(m, "fanInTotal")} |`
      ),
      "",
      `${reps} reps, n=${n}, ${getAlls} getAlls of ${GETALL}, ${wakeups} wake-ups, fan-in of ${fanIn}`,
      ""
    )
  }
  const { cpu, rates } = yield* interleavedGetAll(layerOf, server.port, cluster.rootNodes)
  const single = rates.get("single")!
  out.push(
    `| getAll(1,000 ready), interleaved | calls/s | ÷ single, per round | client CPU µs/call | servers' CPU µs/call |`,
    `|---|---|---|---|---|`,
    ...Array.from(
      rates,
      ([name, xs]) =>
        `| ${name} | ${span(xs)} | ×${span(xs.map((x, r) => x / single[r]!))} | ${fmt(cpu.get(name)!.client)} | ${fmt(cpu.get(name)!.server)} |`
    ),
    "",
    `${rounds} rounds of ${turn} calls each, ${Os.cpus().length} CPUs, node ${process.version}`
  )
  process.stdout.write(`${out.join("\n")}\n`)
})

void runMain(main)
