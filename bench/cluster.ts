/**
 * Redis Cluster rows: store, get, getAll of 1,000 ready results and wake-up through
 *   single       — `RedisBackend.layer` on one redis-server,
 *   single-slot  — `RedisClusterBackend`, every key under `{celery}:` (one master serves it all),
 *   spread       — `RedisClusterBackend`, plain keys over 3 masters (getAll: one MGET per slot),
 * plus `raw spread getAll`: node-redis' cluster client doing the same wire work as the spread
 * getAll (the 1,000 keys grouped by slot, one MGET or GET per slot, all sent at once).
 * One redis-server and one 3-master + 3-replica cluster on free loopback ports, the modes
 * interleaved (rotated order) `--reps` times; one markdown table: median (min–max) and the ratio
 * to `single`.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/cluster.ts [--reps 3] [--n 10000] [--getalls 100]
 */
import { randomUUID } from "node:crypto"
import * as Os from "node:os"
import calculateSlot from "cluster-key-slot"
import { Context, Effect, Exit, Fiber, Layer } from "effect"
import { createCluster } from "redis"
import { ResultBackend } from "@effect-celery/core"
import * as Keys from "@effect-celery/core/Keys"
import { RedisBackend, RedisClusterBackend } from "@effect-celery/redis"
import { redisCluster } from "../test-support/RedisCluster.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const flag = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const reps = flag("--reps", 3)
const n = flag("--n", 10000)
const getAlls = flag("--getalls", 100)
const wakeups = flag("--wakeups", 200)
const GETALL = 1000

type Mode = "single" | "single-slot" | "spread"
const modes: ReadonlyArray<Mode> = ["single", "single-slot", "spread"]
type Row = { store: number; get: number; getAll: number; wake: number }

const callers = <E>(
  k: number,
  count: number,
  task: (i: number) => Effect.Effect<unknown, E>
): Effect.Effect<void, E> => {
  let next = 0
  const caller: Effect.Effect<void, E> = Effect.suspend(() => {
    if (next >= count) return Effect.void
    const i = next++
    return Effect.zipRight(task(i), caller)
  })
  return Effect.all(
    Array.from({ length: Math.min(k, count) }, () => caller),
    { concurrency: "unbounded", discard: true }
  )
}

const measure = (layer: Layer.Layer<ResultBackend.ResultBackend, unknown>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* Layer.build(layer)
      const backend = Context.get(ctx, ResultBackend.ResultBackend)
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
        const id = randomUUID()
        const waiter = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* Effect.sleep("1 millis")
        const t = performance.now()
        yield* backend.markAsDone(id, i)
        yield* Fiber.join(waiter)
        lat.push(performance.now() - t)
      }
      lat.sort((a, b) => a - b)
      return { store, get, getAll, wake: lat[Math.floor(lat.length / 2)]! } satisfies Row
    })
  )

/** node-redis' cluster client: the spread getAll's wire work (keys stored by the spread run). */
const rawSpreadGetAll = (rootNodes: ReadonlyArray<{ host: string; port: number }>) =>
  Effect.promise(async () => {
    const raw = createCluster({ rootNodes: rootNodes.map((r) => ({ socket: r })) })
    raw.on("error", () => {})
    await raw.connect()
    const keys = Array.from({ length: GETALL }, (_, i) => `${Keys.TASK_KEYPREFIX}raw-${i}`)
    await Promise.all(keys.map((k) => raw.set(k, "x")))
    const once = () => {
      const bySlot = new Map<number, Array<string>>()
      for (const k of keys) {
        const s = calculateSlot(k)
        const g = bySlot.get(s)
        if (g === undefined) bySlot.set(s, [k])
        else g.push(k)
      }
      return Promise.all(Array.from(bySlot.values(), (g) => (g.length === 1 ? raw.get(g[0]!) : raw.mGet(g))))
    }
    for (let i = 0; i < 10; i++) await once()
    const t = performance.now()
    for (let i = 0; i < getAlls; i++) await once()
    const rate = getAlls / ((performance.now() - t) / 1000)
    await raw.disconnect()
    return rate
  })

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
  const results: Record<Mode, Array<Row>> = { single: [], "single-slot": [], spread: [] }
  const raw: Array<number> = []
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(k + r) % modes.length]!
      const res = yield* measure(layerOf(mode))
      results[mode].push(res)
      process.stderr.write(`rep ${r + 1} ${mode}: ${JSON.stringify(res)}\n`)
    }
    raw.push(yield* rawSpreadGetAll(cluster.rootNodes))
    process.stderr.write(`rep ${r + 1} raw spread getAll: ${raw[raw.length - 1]}\n`)
  }
  const med = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2))
  const cell = (mode: Mode, key: keyof Row) => {
    const xs = results[mode].map((x) => x[key])
    const ratio = med(xs) / med(results.single.map((x) => x[key]))
    return `${fmt(med(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}) ×${ratio.toFixed(2)}`
  }
  const lines = [
    `| mode | store ops/s | get ops/s | getAll(1,000) calls/s | wake-up p50 ms |`,
    `|---|---|---|---|---|`,
    ...modes.map(
      (m) => `| ${m} | ${cell(m, "store")} | ${cell(m, "get")} | ${cell(m, "getAll")} | ${cell(m, "wake")} |`
    ),
    `| raw node-redis cluster, spread getAll wire work | | | ${fmt(med(raw))} (${fmt(Math.min(...raw))}–${fmt(Math.max(...raw))}) | |`
  ]
  process.stdout.write(
    `${lines.join("\n")}\n\n${reps} reps, n=${n}, ${getAlls} getAlls of ${GETALL}, ${wakeups} wake-ups, ${Os.cpus().length} CPUs, node ${process.version}\n`
  )
})

void Effect.runPromiseExit(Effect.scoped(main)).then((exit) => {
  if (Exit.isFailure(exit)) {
    process.stderr.write(`${String(exit.cause)}\n`)
    process.exitCode = 1
  }
})
