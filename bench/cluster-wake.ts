/**
 * Wake-up latency on a Redis Cluster, decomposed: `waitFor` already subscribed, then `markAsDone`,
 * timed from the store's call to the waiter's return (as `bench/cluster.ts`'s wake-up column), for
 *   single       — `RedisBackend.layer` on one redis-server,
 *   single-slot  — `RedisClusterBackend`, every key under `{celery}:`,
 *   spread       — `RedisClusterBackend`, plain keys over 3 masters, also split by the key's
 *                  master (each channel is subscribed on its key's master: the publication does not
 *                  cross the cluster bus; the probe below checks where),
 * plus the store alone in each mode, and node-redis' cluster client alone running the store script
 * on a key of one slot and on spread keys (what spreading costs the servers before this library's
 * client acts), and node-redis alone waking up (a subscriber, the store script, its message) on the
 * single server and on the cluster (subscriber on the key's master): what the cluster itself costs
 * a wake-up. The modes alternate wake-up by wake-up (not run after run), so
 * a loaded machine's drift falls on all of them alike; the table gives p50/p90/p99 and the p50
 * ratio to `single`.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/cluster-wake.ts [--n 1000] [--settle 1]
 * (`--settle`: ms between a wait's start and the store, default 1)
 */
import { randomUUID } from "node:crypto"
import calculateSlot from "cluster-key-slot"
import { Context, Effect, Fiber, Layer } from "effect"
import { createClient, createCluster } from "redis"
import { ResultBackend } from "@effect-celery/core"
import * as Keys from "@effect-celery/core/Keys"
import { RedisBackend, RedisClusterBackend } from "@effect-celery/redis"
import * as Scripts from "../packages/redis/src/internal/scripts.js"
import { redisCluster } from "../test-support/RedisCluster.js"
import { machineLine, runMain, wakeUp } from "./effects.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const n = args.includes("--n") ? Number(args[args.indexOf("--n") + 1]) : 1000
// ms between the wait's start and the store (the wait subscribes and syncs meanwhile).
const settle = args.includes("--settle") ? Number(args[args.indexOf("--settle") + 1]) : 1

type Backend = ResultBackend.ResultBackend

const store = (backend: Backend, i: number) =>
  Effect.gen(function* () {
    const t = performance.now()
    yield* backend.markAsDone(randomUUID(), i)
    return performance.now() - t
  })

/**
 * node-redis' cluster client alone running the library's store script (a day's TTL, the SUCCESS
 * guard) on a key: what spreading keys over masters costs a store on the servers' side, before
 * this library's client does anything.
 */
const rawStore = (raw: ReturnType<typeof createCluster>, key: string, value: string) =>
  Effect.promise(async () => {
    const t = performance.now()
    await raw.sendCommand(key, false, ["EVAL", Scripts.store.source, "1", key, "86400", "1", value])
    return performance.now() - t
  })

type RawClient = ReturnType<typeof createClient>

/**
 * node-redis alone: a fresh channel SUBSCRIBEd on `subscriber` (acknowledged), `settle` ms, then
 * the store script run by `run` on that key; ms from the store's call to the message's arrival.
 */
const rawWakeUp = (subscriber: RawClient, key: string, run: (key: string) => Promise<unknown>) =>
  Effect.promise(async () => {
    let arrivedAt = 0
    const arrived = new Promise<void>((resolve) => {
      void subscriber.subscribe(key, () => {
        arrivedAt = performance.now()
        resolve()
      })
    })
    await new Promise((resolve) => setTimeout(resolve, settle))
    const t = performance.now()
    await run(key)
    await arrived
    await subscriber.unsubscribe(key)
    return arrivedAt - t
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
  const raw = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createCluster({ rootNodes: cluster.rootNodes.map((socket) => ({ socket })) })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.disconnect())
  )
  const meta = JSON.stringify({ status: "SUCCESS", result: 1, traceback: null, children: [], task_id: randomUUID() })
  const rawStoreArgs = (key: string) => ["EVAL", Scripts.store.source, "1", key, "86400", "1", meta]
  // Raw wake-ups: the single server, and the cluster with the subscriber on the `{celery}` slot's master.
  const slotMaster = yield* cluster.masterOf(calculateSlot("{celery}"))
  const rawClients = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const clients = {
        single: createClient({ socket: { host: "127.0.0.1", port: server.port } }),
        singleSub: createClient({ socket: { host: "127.0.0.1", port: server.port } }),
        clusterSub: createClient({ socket: { host: "127.0.0.1", port: slotMaster } })
      }
      await Promise.all(Object.values(clients).map((c) => c.connect()))
      return clients
    }),
    (clients) => Effect.promise(() => Promise.all(Object.values(clients).map((c) => c.disconnect())))
  )

  // Where the spread subscriber listens for a key: the node that counts a subscriber on its channel.
  const ranges = yield* cluster.slots
  const masterOf = (id: string) => {
    const slot = calculateSlot(`${Keys.TASK_KEYPREFIX}${id}`)
    return ranges.find((r) => r.from <= slot && slot <= r.to)!.master
  }
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
  const masters = Array.from(new Set(ranges.map((r) => r.master))).sort()

  // Rows in this order, by key.
  const lat = new Map<string, Array<number>>(
    [
      "single",
      "single-slot",
      "spread",
      ...masters.map((port) => `master ${port}`),
      "store single",
      "store single-slot",
      "store spread",
      "raw single-slot",
      "raw spread",
      "raw wake single",
      "raw wake single-slot"
    ].map((k) => [k, []])
  )
  const rec = (k: string, millis: number) => lat.get(k)!.push(millis)
  for (let i = 0; i < 50; i++) {
    yield* wakeUp(single, i, settle)
    yield* wakeUp(slotted, i, settle)
    yield* wakeUp(spread, i, settle)
  }
  for (let i = 0; i < n; i++) {
    // Rotated order, so none of the three always follows another.
    for (let k = 0; k < 3; k++) {
      const which = (i + k) % 3
      if (which === 0) rec("single", (yield* wakeUp(single, i, settle)).millis)
      else if (which === 1) rec("single-slot", (yield* wakeUp(slotted, i, settle)).millis)
      else {
        const { id, millis } = yield* wakeUp(spread, i, settle)
        rec("spread", millis)
        rec(`master ${masterOf(id)}`, millis)
      }
    }
    rec("store single", yield* store(single, i))
    rec("store single-slot", yield* store(slotted, i))
    rec("store spread", yield* store(spread, i))
    rec("raw single-slot", yield* rawStore(raw, `{celery}:${Keys.TASK_KEYPREFIX}${randomUUID()}`, meta))
    rec("raw spread", yield* rawStore(raw, `${Keys.TASK_KEYPREFIX}${randomUUID()}`, meta))
    rec(
      "raw wake single",
      yield* rawWakeUp(rawClients.singleSub, `${Keys.TASK_KEYPREFIX}${randomUUID()}`, (key) =>
        rawClients.single.sendCommand(rawStoreArgs(key))
      )
    )
    rec(
      "raw wake single-slot",
      yield* rawWakeUp(rawClients.clusterSub, `{celery}:${Keys.TASK_KEYPREFIX}${randomUUID()}`, (key) =>
        raw.sendCommand(key, false, rawStoreArgs(key))
      )
    )
  }

  const q = (xs: ReadonlyArray<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!
  const base = q(lat.get("single")!, 0.5)
  const names: Record<string, string> = {
    single: "wake-up, single",
    "single-slot": "wake-up, single-slot",
    spread: "wake-up, spread (all)",
    ...Object.fromEntries(masters.map((port) => [`master ${port}`, `wake-up, spread, keys of master ${port}`])),
    "store single": "store alone, single",
    "store single-slot": "store alone, single-slot",
    "store spread": "store alone, spread",
    "raw single-slot": "raw node-redis cluster running the store script, one slot",
    "raw spread": "raw node-redis cluster running the store script, spread",
    "raw wake single": "raw node-redis wake-up (store script, message on a subscriber), single",
    "raw wake single-slot": "raw node-redis wake-up, cluster, subscriber on the slot's master"
  }
  const lines = [
    "| measure | n | p50 ms | p90 ms | p99 ms | p50 ÷ single wake-up |",
    "|---|---|---|---|---|---|",
    ...Array.from(lat, ([k, xs]) => {
      return `| ${names[k]} | ${xs.length} | ${q(xs, 0.5).toFixed(3)} | ${q(xs, 0.9).toFixed(3)} | ${q(xs, 0.99).toFixed(3)} | ${k === "raw wake single-slot" ? `×${(q(xs, 0.5) / q(lat.get("raw wake single")!, 0.5)).toFixed(2)} (raw ÷ raw)` : k.startsWith("store") || k.startsWith("raw") ? "" : `×${(q(xs, 0.5) / base).toFixed(2)}`} |`
    })
  ]
  process.stdout.write(
    `${lines.join("\n")}\n\nA spread key's channel was subscribed on ${subscriberNode === masterOf(probe) ? "its master" : `node ${subscriberNode}, not its master ${masterOf(probe)}`}. ${n} rounds, ${machineLine()}\n`
  )
})

void runMain(main).then(() => process.exit())
