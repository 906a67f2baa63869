/**
 * `RedisClusterBackend` under faults on a real cluster (3 masters + 3 replicas, one for the file):
 * the master serving the single slot SIGKILLed in the middle of 10,000 stores while a watch of the
 * 10,000 tasks runs. Its replica is promoted; every acknowledged store must be readable afterwards
 * and every final state delivered to the watch exactly once. The time from the kill to the first
 * store that succeeds after it is printed (and bounded generously).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Context, Effect, Either, Exit, Fiber, Layer, Ref, Scope, Stream } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import { RedisClient } from "@effect-celery/redis/RedisClient"
import * as RedisClusterBackend from "@effect-celery/redis/RedisClusterBackend"
import { slotOf } from "../src/internal/cluster.js"
import * as Scripts from "../src/internal/scripts.js"
import type { RedisCluster } from "../../../test-support/RedisCluster.js"
import { redisCluster } from "../../../test-support/RedisCluster.js"

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 60_000)
const cluster: Effect.Effect<RedisCluster, unknown> = Effect.runSync(Effect.cached(Scope.extend(redisCluster(), scope)))

/** The healthy cluster and the spread layout's services over it. */
const spreadBackend = Effect.gen(function* () {
  const c = yield* cluster
  yield* c.waitHealthy()
  const services = yield* Layer.build(RedisClusterBackend.layer({ rootNodes: c.rootNodes }, { layout: "spread" }))
  return { c, services } as const
})

const TASKS = 10_000

/**
 * One run: the backend in `layout`, a watch of TASKS tasks, TASKS stores 64 at a time, and a third of
 * the way in `victim`'s master SIGKILLed (single slot: the slot's; spread: one still replicated).
 */
const failover = (layout: RedisClusterBackend.Layout) =>
  Effect.gen(function* () {
    const c = yield* cluster
    // Each run kills a master that still has a replica (the first run's promoted replica has none).
    yield* c.waitHealthy()
    const prefix = layout === "single-slot" ? "{celery}:" : undefined
    const services = yield* Layer.build(
      RedisClusterBackend.layer(
        { rootNodes: c.rootNodes },
        { ...(prefix === undefined ? {} : { keys: { globalKeyprefix: prefix } }), layout }
      )
    )
    const backend = Context.get(services, ResultBackend)
    const consumer = Context.get(services, ResultConsumer)
    const ids = Array.from({ length: TASKS }, (_, i) => `fault-${i}-${randomUUID()}`)
    const slot = prefix === undefined ? undefined : slotOf(prefix)
    const ranges = yield* c.slots
    const master =
      slot === undefined
        ? ranges.find((r) => r.replicas.some((port) => c.node(port).process.isRunning()))!.master
        : yield* c.masterOf(slot)

    // The watch: every item, by task id.
    const seen = new Map<string, number>()
    const watching = yield* consumer.watch(ids).pipe(
      Stream.runForEach((item) =>
        Effect.sync(() => {
          if (Either.isLeft(item)) return
          if (item.right.status === "SUCCESS") seen.set(item.right.taskId, (seen.get(item.right.taskId) ?? 0) + 1)
        })
      ),
      Effect.fork
    )
    // Listening: a store now reaches the watch (through the read or the channel).
    const probe = ids[0]!
    yield* backend.markAsDone(probe, 0)
    while (!seen.has(probe)) yield* Effect.sleep(10)

    const acknowledged = yield* Ref.make(new Array<string>())
    let killedAt = 0
    let firstAfterKill = 0
    // The first store sent after the master is dead (not one in flight at the kill) to succeed.
    const store = (id: string, i: number) =>
      Effect.suspend(() => {
        const sentAfterKill = killedAt > 0
        return Effect.tap(backend.markAsDone(id, i), () =>
          Effect.sync(() => {
            if (sentAfterKill && firstAfterKill === 0) firstAfterKill = performance.now()
          })
        )
      }).pipe(Effect.zipRight(Ref.update(acknowledged, (a) => (a.push(id), a))))
    const writers = yield* Effect.forEach(ids.slice(1), (id, i) => store(id, i + 1), {
      concurrency: 64,
      discard: true
    }).pipe(Effect.fork)

    // A third in, the master of the slot dies.
    while ((yield* Ref.get(acknowledged)).length < TASKS / 3) yield* Effect.sleep(5)
    yield* c.kill(master)
    killedAt = performance.now()
    const ackedBeforeKill = (yield* Ref.get(acknowledged)).length

    yield* Fiber.join(writers)
    const recovery = firstAfterKill - killedAt
    const allDone = performance.now() - killedAt
    yield* c.waitHealthy()
    const after = yield* c.slots
    assert.isFalse(
      after.some((r) => r.master === master),
      "a replica took the dead master's slots over"
    )

    // Every acknowledged store is readable.
    const acked = [probe, ...(yield* Ref.get(acknowledged))]
    assert.strictEqual(acked.length, TASKS, "every store succeeded in the end (retried through the failover)")
    const metas = yield* backend.getAll(acked, { timeout: "30 seconds" })
    const missing = metas.filter((m) => Either.isLeft(m) || m.right.status !== "SUCCESS").length

    // Every final state delivered exactly once.
    yield* Fiber.join(watching).pipe(Effect.timeout("60 seconds"))
    const twice = Array.from(seen.values()).filter((n) => n > 1).length

    yield* Effect.log(
      `cluster failover (${layout}): ${ackedBeforeKill} stores acknowledged before the kill; first store after it succeeded in ` +
        `${Math.round(recovery)} ms, the last of them in ${Math.round(allDone)} ms; ${missing} acknowledged results missing; ${seen.size} delivered, ${twice} more than once`
    )
    assert.strictEqual(missing, 0, "acknowledged results lost")
    assert.strictEqual(seen.size, TASKS, "every final state delivered")
    assert.strictEqual(twice, 0, "a final state delivered twice")
    assert.isBelow(recovery, 20_000)
  })

// One cluster, one failover at a time.
describe.sequential("RedisClusterBackend under faults", () => {
  it.scopedLive(
    "single slot: the slot's master SIGKILLed during 10k stores and a 10k-task watch: replica promoted, nothing acknowledged lost, each final state once",
    () => failover("single-slot"),
    180_000
  )
  it.scopedLive(
    "the subscriber's node (the keys' master) SIGKILLed during a fan-in of 5k results: the resync delivers every one, and a wait still open moves to the promoted replica",
    () =>
      Effect.gen(function* () {
        const c = yield* cluster
        yield* c.waitHealthy()
        // Keys under a hash tag whose master still has a running replica (earlier cases killed
        // masters of the shared cluster): killing it is a failover, not a slot gone for good.
        const ranges = yield* c.slots
        const replicated = ranges.filter((r) => r.replicas.some((port) => c.node(port).process.isRunning()))
        let prefix = ""
        for (let i = 0; prefix === ""; i++) {
          const slot = slotOf(`{fanin-${i}}:`)
          if (replicated.some((r) => slot >= r.from && slot <= r.to)) prefix = `{fanin-${i}}:`
        }
        const master = yield* c.masterOf(slotOf(prefix))
        const services = yield* Layer.build(
          RedisClusterBackend.layer(
            { rootNodes: c.rootNodes },
            { keys: { globalKeyprefix: prefix }, layout: "single-slot" }
          )
        )
        const backend = Context.get(services, ResultBackend)
        const ids = Array.from({ length: 5000 }, (_, i) => `fanin-${i}-${randomUUID()}`)
        const waiting = yield* backend.getAll(ids, { timeout: "60 seconds" }).pipe(Effect.fork)
        const last = `fanin-last-${randomUUID()}`
        const lastWait = yield* backend.waitFor(last, { timeout: "120 seconds" }).pipe(Effect.fork)
        // The node the consumer subscribed on: the one that counts a subscriber on the last channel.
        const channel = `${prefix}celery-task-meta-${ids[ids.length - 1]}`
        let subscriberNode: number | undefined
        while (subscriberNode === undefined) {
          for (const node of c.nodes.filter((n) => n.process.isRunning())) {
            const reply = yield* c.cli(node.port, ["PUBSUB", "NUMSUB", channel])
            if (reply.trim().split("\n").pop() === "1") subscriberNode = node.port
          }
          if (subscriberNode === undefined) yield* Effect.sleep(10)
        }
        // getAll read the keys first, so the slot map was known: the channels went to their master.
        assert.strictEqual(subscriberNode, master, "the subscriber is on the keys' master")
        yield* Effect.forEach(ids.slice(0, 2500), (id, i) => backend.markAsDone(id, i), {
          concurrency: 64,
          discard: true
        })
        yield* c.kill(subscriberNode)
        const killedAt = performance.now()
        // Retried through the failover (the slot has no master until the replica is promoted).
        yield* Effect.forEach(ids.slice(2500), (id, i) => backend.markAsDone(id, 2500 + i), {
          concurrency: 64,
          discard: true
        })
        const metas = yield* Fiber.join(waiting)
        const done = performance.now() - killedAt
        const ok = metas.filter((m) => Either.isRight(m) && m.right.status === "SUCCESS").length
        yield* Effect.log(
          `subscriber node ${subscriberNode} (the keys' master) killed mid fan-in: ${ok} of ${ids.length} delivered, the last ${Math.round(done)} ms after the kill`
        )
        assert.strictEqual(ok, ids.length)
        // The watch still open (`last`, never stored) moves to the promoted replica once the
        // topology poll sees the failover: its channel is local again, not across the bus.
        const promoted = yield* c.masterOf(slotOf(prefix))
        assert.notStrictEqual(promoted, master, "a replica was promoted")
        const lastChannel = `${prefix}celery-task-meta-${last}`
        let on: ReadonlyArray<number> = []
        // The poll runs every second; the failover is over by now.
        const until = performance.now() + 20_000
        while (!(on.length === 1 && on[0] === promoted) && performance.now() < until) {
          yield* Effect.sleep(10)
          const running = c.nodes.filter((n) => n.process.isRunning())
          const counts = yield* Effect.forEach(running, (node) => c.cli(node.port, ["PUBSUB", "NUMSUB", lastChannel]))
          on = running.filter((_, k) => counts[k]!.trim().split("\n").pop() === "1").map((n) => n.port)
        }
        assert.deepStrictEqual(on, [promoted], "the open watch is subscribed on the promoted master only")
        yield* backend.markAsDone(last, "last")
        assert.strictEqual((yield* Fiber.join(lastWait)).result, "last")
      }),
    180_000
  )
  it.scopedLive(
    "spread keys: a watch begun before any command subscribes each channel on its key's master, gets every item once from every part, and unsubscribes as tasks end",
    () =>
      Effect.gen(function* () {
        const { c, services } = yield* spreadBackend
        const backend = Context.get(services, ResultBackend)
        const consumer = Context.get(services, ResultConsumer)
        const ids = Array.from({ length: 300 }, (_, i) => `placed-${i}-${randomUUID()}`)
        const channels = ids.map((id) => `celery-task-meta-${id}`)
        const ranges = yield* c.slots
        const masterOf = (channel: string) => {
          const slot = slotOf(channel)
          return ranges.find((r) => slot >= r.from && slot <= r.to)!.master
        }
        const seen = new Map<string, number>()
        const watching = yield* consumer.watch(ids).pipe(
          Stream.runForEach((item) =>
            Effect.sync(() => {
              if (Either.isRight(item)) seen.set(item.right.taskId, (seen.get(item.right.taskId) ?? 0) + 1)
            })
          ),
          Effect.fork
        )
        /** For each running node, how many subscribers it counts on each channel. */
        const counts = Effect.forEach(
          c.nodes.filter((n) => n.process.isRunning()),
          (node) =>
            Effect.map(c.cli(node.port, ["PUBSUB", "NUMSUB", ...channels]), (reply) => {
              const lines = reply.trim().split("\n")
              return { port: node.port, counts: channels.map((_, i) => Number(lines[2 * i + 1])) }
            })
        )
        // Subscribed: every channel counted once, on its master and nowhere else.
        let placed = false
        while (!placed) {
          const now = yield* counts
          placed = channels.every((channel, i) =>
            now.every(({ counts, port }) => counts[i] === (port === masterOf(channel) ? 1 : 0))
          )
          if (!placed) yield* Effect.sleep(20)
        }
        assert.strictEqual(new Set(channels.map(masterOf)).size, 3, "the watch spans every master")
        yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, i), { concurrency: 64, discard: true })
        yield* Fiber.join(watching).pipe(Effect.timeout("30 seconds"))
        assert.strictEqual(seen.size, ids.length, "every item")
        assert.isTrue(
          Array.from(seen.values()).every((n) => n === 1),
          "each once"
        )
        // Released as the tasks ended: nothing stays subscribed.
        let left = 1
        while (left > 0) {
          left = (yield* counts).reduce((sum, { counts }) => sum + counts.reduce((a, b) => a + b, 0), 0)
          if (left > 0) yield* Effect.sleep(20)
        }
      }),
    60_000
  )
  it.scopedLive(
    "spread keys: a live reshard of 3,000 slots during 5k stores and a 5k-task watch: nothing lost, each final state once, no stuck watch",
    () =>
      Effect.gen(function* () {
        const { c, services } = yield* spreadBackend
        const backend = Context.get(services, ResultBackend)
        const consumer = Context.get(services, ResultConsumer)
        const ids = Array.from({ length: 5000 }, (_, i) => `reshard-${i}-${randomUUID()}`)
        const seen = new Map<string, number>()
        const watching = yield* consumer.watch(ids).pipe(
          Stream.runForEach((item) =>
            Effect.sync(() => {
              if (Either.isRight(item) && item.right.status === "SUCCESS")
                seen.set(item.right.taskId, (seen.get(item.right.taskId) ?? 0) + 1)
            })
          ),
          Effect.fork
        )
        yield* backend.markAsDone(ids[0]!, 0)
        while (!seen.has(ids[0]!)) yield* Effect.sleep(10)
        const masters = Array.from(new Set((yield* c.slots).map((r) => r.master)))
        const started = performance.now()
        // Paced (50 stores, then 25 ms) so that the stores span the reshard rather than finish first.
        let stored = 0
        const chunks = Array.from({ length: 100 }, (_, k) => ids.slice(1 + k * 50, 1 + (k + 1) * 50))
        const writers = yield* Effect.forEach(
          chunks,
          (chunk) =>
            Effect.zipRight(
              Effect.forEach(chunk, (id) => Effect.tap(backend.markAsDone(id, 1), () => Effect.sync(() => stored++)), {
                concurrency: 50,
                discard: true
              }),
              Effect.sleep(25)
            ),
          { discard: true }
        ).pipe(Effect.fork)
        yield* c.reshard(masters[0]!, masters[1]!, 3000)
        const reshardMillis = performance.now() - started
        const storedDuring = stored
        yield* Fiber.join(writers)
        const metas = yield* backend.getAll(ids, { timeout: "30 seconds" })
        const missing = metas.filter((m) => Either.isLeft(m) || m.right.status !== "SUCCESS").length
        yield* Fiber.join(watching).pipe(Effect.timeout("60 seconds"))
        const twice = Array.from(seen.values()).filter((n) => n > 1).length
        yield* Effect.log(
          `reshard of 3,000 slots took ${Math.round(reshardMillis)} ms, ${storedDuring} stores acknowledged meanwhile: ${missing} missing, ${seen.size} delivered, ${twice} twice`
        )
        assert.strictEqual(missing, 0)
        assert.strictEqual(seen.size, ids.length)
        assert.strictEqual(twice, 0)
        assert.isAbove(storedDuring, 500, "stores ran during the reshard")
      }),
    240_000
  )
  it.scopedLive(
    "spread keys: getAll, mget and the non-string check over every master (one script call per node) give the asked order, repeats and missing keys included, before, during and after a live reshard",
    () =>
      Effect.gen(function* () {
        const { c, services } = yield* spreadBackend
        const backend = Context.get(services, ResultBackend)
        const client = Context.get(services, RedisClient)
        const ids = Array.from({ length: 2000 }, (_, i) => `read-${i}-${randomUUID()}`)
        yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, i), { concurrency: 64, discard: true })
        const ranges = yield* c.slots
        const masterOfSlot = (slot: number) => ranges.find((r) => slot >= r.from && slot <= r.to)!.master
        const masters = Array.from(new Set(ranges.map((r) => r.master)))
        assert.strictEqual(masters.length, 3)
        assert.strictEqual(new Set(ids.map((id) => masterOfSlot(slotOf(`celery-task-meta-${id}`)))).size, 3)
        assert.isAbove(new Set(ids.map((id) => slotOf(`celery-task-meta-${id}`))).size, 1500)
        // Asked out of order, some twice.
        const asked = [...ids.map((_, i) => (i * 7919) % ids.length), 5, 0, 1999, 5, 17].map((i) => ({
          i,
          id: ids[i]!
        }))
        // The raw read: stored, missing and non-string keys of every node, in one call.
        const wrongType = `celery-task-meta-hash-${randomUUID()}`
        yield* client.command(["HSET", wrongType, "status", "SUCCESS"])
        const rawKeys = [
          ...asked.slice(0, 300).map(({ id }) => `celery-task-meta-${id}`),
          wrongType,
          ...Array.from({ length: 50 }, () => `celery-task-meta-missing-${randomUUID()}`)
        ]
        const check = (what: string) =>
          Effect.gen(function* () {
            const metas = yield* backend.getAll(
              asked.map(({ id }) => id),
              { timeout: "30 seconds" }
            )
            assert.strictEqual(metas.length, asked.length, what)
            for (let k = 0; k < asked.length; k++) {
              const meta = metas[k]!
              assert.isTrue(Either.isRight(meta), `${what}: entry ${k} decodes`)
              if (Either.isRight(meta)) {
                assert.strictEqual(meta.right.taskId, asked[k]!.id, `${what}: entry ${k} in order`)
                assert.strictEqual(meta.right.result, asked[k]!.i, `${what}: entry ${k}'s value`)
              }
            }
            const raw = yield* client.mget(rawKeys)
            assert.strictEqual(raw.length, rawKeys.length, what)
            for (let k = 0; k < 300; k++) assert.include(raw[k], asked[k]!.id, `${what}: raw ${k}`)
            for (let k = 300; k < rawKeys.length; k++) assert.isNull(raw[k], `${what}: raw ${k} is nil`)
            // The non-string check a watch makes of the keys it read as missing, over every node
            // in one call (per node too, or per slot where a node's part met a moved slot).
            const types = yield* client.runScript(
              Scripts.nonString,
              rawKeys,
              rawKeys.map(() => "")
            )
            assert.deepStrictEqual(
              types,
              rawKeys.map((key) => (key === wrongType ? "hash" : "")),
              `${what}: types`
            )
          })
        yield* check("before the reshard")
        // Counted on the masters (the script cached by now): the reads went as a few script calls
        // per node that all succeeded (none read again per slot).
        yield* Effect.forEach(masters, (port) => c.cli(port, ["CONFIG", "RESETSTAT"]), { discard: true })
        yield* check("before the reshard, again")
        const scripts = yield* Effect.forEach(masters, (port) =>
          Effect.map(c.cli(port, ["INFO", "commandstats"]), (info) => {
            const stat = /cmdstat_evalsha:calls=(\d+),.*failed_calls=(\d+)/.exec(info)
            return { calls: Number(stat?.[1] ?? 0), failed: Number(stat?.[2] ?? 0) }
          })
        )
        for (const x of scripts) {
          assert.isAtLeast(x.calls, 1, "a script call on every master")
          assert.isAtMost(x.calls, 6, "a few script calls per master, not one per slot")
          assert.strictEqual(x.failed, 0)
        }
        // Reads without pause while 2,000 slots move between two masters (ASK, then MOVED).
        let during = 0
        let resharding = true
        const reader = yield* Effect.fork(
          Effect.whileLoop({
            while: () => resharding,
            body: () => Effect.zipRight(check(`read ${during + 1} during the reshard`), Effect.yieldNow()),
            step: () => void during++
          })
        )
        yield* c.reshard(masters[1]!, masters[2]!, 2000).pipe(Effect.ensuring(Effect.sync(() => (resharding = false))))
        yield* Fiber.join(reader)
        yield* check("after the reshard")
        yield* Effect.log(
          `${during} getAll + mget reads of ${asked.length} + ${rawKeys.length} keys during the reshard`
        )
        assert.isAbove(during, 0)
      }),
    240_000
  )
  it.scopedLive(
    "spread keys: a master SIGKILLed during 10k stores and a 10k-task watch: replica promoted, nothing acknowledged lost, each final state once",
    () => failover("spread"),
    180_000
  )
})
