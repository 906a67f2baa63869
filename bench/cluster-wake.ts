/**
 * Wake-up latency on a Redis Cluster, decomposed: `waitFor` already subscribed, then `markAsDone`,
 * timed from the store's call to the waiter's return (as `bench/cluster.ts`'s wake-up column), for
 *   single       — `RedisBackend.layer` on one redis-server,
 *   single-slot  — `RedisClusterBackend`, every key under `{celery}:`,
 *   spread       — `RedisClusterBackend`, plain keys over 3 masters, split by whether the key's
 *                  master is the node the subscriber listens on (the publication is local there,
 *                  and crosses the cluster bus to it from the other masters),
 * plus the store alone in each mode. The modes alternate wake-up by wake-up (not run after run), so
 * a loaded machine's drift falls on all of them alike; the table gives p50/p90/p99 and the p50
 * ratio to `single`.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/cluster-wake.ts [--n 1000]
 */
import { randomUUID } from "node:crypto"
import * as Os from "node:os"
import calculateSlot from "cluster-key-slot"
import { Context, Effect, Exit, Fiber, Layer } from "effect"
import { ResultBackend } from "@effect-celery/core"
import * as Keys from "@effect-celery/core/Keys"
import { RedisBackend, RedisClusterBackend } from "@effect-celery/redis"
import { redisCluster } from "../test-support/RedisCluster.js"
import { wakeUp } from "./effects.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const n = args.includes("--n") ? Number(args[args.indexOf("--n") + 1]) : 1000

type Backend = ResultBackend.ResultBackend

const store = (backend: Backend, i: number) =>
  Effect.gen(function* () {
    const t = performance.now()
    yield* backend.markAsDone(randomUUID(), i)
    return performance.now() - t
  })

const main = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(
    Effect.promise(() => startRedis()),
    (s) => Effect.sync(s.stop)
  )
  const cluster = yield* redisCluster()
  const backendOf = <E>(layer: Layer.Layer<Backend, E>) =>
    Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, ResultBackend.ResultBackend))
  const single = yield* backendOf(RedisBackend.layer({ host: "127.0.0.1", port: server.port }))
  const slotted = yield* backendOf(
    RedisClusterBackend.layer(
      { rootNodes: cluster.rootNodes },
      { layout: "single-slot", keys: { globalKeyprefix: "{celery}:" } }
    )
  )
  const spread = yield* backendOf(RedisClusterBackend.layer({ rootNodes: cluster.rootNodes }, { layout: "spread" }))

  // The node the spread subscriber listens on: where a watched channel counts a subscriber.
  const probe = randomUUID()
  const probing = yield* Effect.fork(spread.waitFor(probe, { timeout: "10 seconds" }))
  let subscriberNode: number | undefined
  while (subscriberNode === undefined) {
    for (const node of cluster.nodes) {
      const reply = yield* cluster.cli(node.port, ["PUBSUB", "NUMSUB", `${Keys.TASK_KEYPREFIX}${probe}`])
      if (reply.trim().split("\n").pop() === "1") subscriberNode = node.port
    }
    if (subscriberNode === undefined) yield* Effect.sleep(5)
  }
  yield* spread.markAsDone(probe, 0)
  yield* Fiber.join(probing)
  const ranges = yield* cluster.slots
  const masterOf = (id: string) => {
    const slot = calculateSlot(`${Keys.TASK_KEYPREFIX}${id}`)
    return ranges.find((r) => r.from <= slot && slot <= r.to)!.master
  }

  const lat = {
    single: [] as Array<number>,
    "single-slot": [] as Array<number>,
    spread: [] as Array<number>,
    local: [] as Array<number>,
    remote: [] as Array<number>,
    "store single": [] as Array<number>,
    "store single-slot": [] as Array<number>,
    "store spread": [] as Array<number>
  }
  for (let i = 0; i < 50; i++) {
    yield* wakeUp(single, i)
    yield* wakeUp(slotted, i)
    yield* wakeUp(spread, i)
  }
  for (let i = 0; i < n; i++) {
    // Rotated order, so none of the three always follows another.
    for (let k = 0; k < 3; k++) {
      const which = (i + k) % 3
      if (which === 0) lat.single.push((yield* wakeUp(single, i)).millis)
      else if (which === 1) lat["single-slot"].push((yield* wakeUp(slotted, i)).millis)
      else {
        const { id, millis } = yield* wakeUp(spread, i)
        lat.spread.push(millis)
        lat[masterOf(id) === subscriberNode ? "local" : "remote"].push(millis)
      }
    }
    lat["store single"].push(yield* store(single, i))
    lat["store single-slot"].push(yield* store(slotted, i))
    lat["store spread"].push(yield* store(spread, i))
  }

  const q = (xs: ReadonlyArray<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!
  const base = q(lat.single, 0.5)
  const names: Record<keyof typeof lat, string> = {
    single: "wake-up, single",
    "single-slot": "wake-up, single-slot",
    spread: "wake-up, spread (all)",
    local: "wake-up, spread, key's master = subscriber's node",
    remote: "wake-up, spread, another master (cluster bus)",
    "store single": "store alone, single",
    "store single-slot": "store alone, single-slot",
    "store spread": "store alone, spread"
  }
  const lines = [
    "| measure | n | p50 ms | p90 ms | p99 ms | p50 ÷ single wake-up |",
    "|---|---|---|---|---|---|",
    ...(Object.keys(lat) as Array<keyof typeof lat>).map((k) => {
      const xs = lat[k]
      return `| ${names[k]} | ${xs.length} | ${q(xs, 0.5).toFixed(3)} | ${q(xs, 0.9).toFixed(3)} | ${q(xs, 0.99).toFixed(3)} | ${k.startsWith("store") ? "" : `×${(q(xs, 0.5) / base).toFixed(2)}`} |`
    })
  ]
  process.stdout.write(
    `${lines.join("\n")}\n\n${n} rounds, ${Os.cpus().length} CPUs, load ${Os.loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}, node ${process.version}\n`
  )
})

void Effect.runPromiseExit(Effect.scoped(main)).then((exit) => {
  if (Exit.isFailure(exit)) {
    process.stderr.write(`${String(exit.cause)}\n`)
    process.exitCode = 1
  }
  process.exit()
})
