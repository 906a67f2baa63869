/**
 * This library's side of the benchmark. Usage: tsx bench/ours.ts <figure> <redis_url> <n> → one JSON line.
 * Every figure goes through the public API: `RedisBackend.layerUrl` → ResultBackend / ResultConsumer.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { Layer } from "effect"
import { Deferred, Effect, Either, Exit, Scope, Stream } from "effect"
import { ResultBackend, ResultConsumer, TaskState } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"
import { createClient } from "redis"
import { store as storeScript } from "../packages/redis/src/internal/scripts.js"
import { callers } from "./effects.js"
import {
  allocatedPerOp,
  commandsSince,
  cpuMicros,
  GETMANY_WARM_UP,
  memory as memoryNow,
  memoryPerTask,
  metaJson,
  monoMs,
  percentile,
  resetStats,
  scriptStorer,
  SECOND_WATCH_MAX,
  serverCpuMicros,
  untilChannels,
  warmUp
} from "./util.js"

const memory = Effect.promise(memoryNow)

const here = Path.dirname(fileURLToPath(import.meta.url))
const [fig, url, nText, paramText] = process.argv.slice(2) as [string, string, string, string | undefined]
const n = Number(nText)
/** The figure's second knob, when it has one: callers in flight, other tasks watched, calls timed. */
const param = paramText === undefined ? undefined : Number(paramText)

const raw = async () => {
  const c = createClient({ url })
  c.on("error", () => {})
  await c.connect()
  return c
}

type Services = ResultBackend.ResultBackend | ResultConsumer.ResultConsumer

/**
 * Once every channel is released, a watch of `n` new tasks (its stream runs in the caller's
 * scope), timed until the server counts them all: the steady-state subscribe rate, as a
 * long-running service subscribes. Seconds.
 */
const secondWatch = (consumer: ResultConsumer.ResultConsumer, probe: Awaited<ReturnType<typeof raw>>) =>
  Effect.gen(function* () {
    yield* Effect.promise(() => untilChannels(probe, (k) => k === 0))
    const ids = Array.from({ length: n }, () => randomUUID())
    const t = performance.now()
    yield* consumer.watch(ids).pipe(Stream.runDrain, Effect.forkScoped)
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    return (performance.now() - t) / 1000
  })

/**
 * `n` stores (as many untimed first) run by `run`: results/s timed and of the warm-up, client CPU
 * and redis-server CPU per timed store.
 */
const timedStores = <E, R>(run: (ids: ReadonlyArray<string>) => Effect.Effect<void, E, R>) =>
  Effect.gen(function* () {
    const probe = yield* Effect.promise(raw)
    const warm = Array.from({ length: warmUp(n) }, () => randomUUID())
    const t0 = performance.now()
    yield* run(warm)
    const coldS = (performance.now() - t0) / 1000
    const ids = Array.from({ length: n }, () => randomUUID())
    const server = yield* Effect.promise(() => serverCpuMicros(probe))
    const t = performance.now()
    const cpu = process.cpuUsage()
    yield* run(ids)
    const s = (performance.now() - t) / 1000
    const cpuUs = cpuMicros(cpu) / n
    const serverUs = ((yield* Effect.promise(() => serverCpuMicros(probe))) - server) / n
    yield* Effect.promise(() => probe.quit())
    return { ops: n / s, ops_cold: warm.length / coldS, cpu_us_per_op: cpuUs, server_cpu_us_per_op: serverUs }
  })

const figures: Record<string, Effect.Effect<unknown, unknown, Services>> = {
  store: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    return yield* timedStores((ids) => callers(param ?? 100, ids.length, (i) => backend.markAsDone(ids[i]!, { x: i })))
  }),
  /**
   * Raw's store (`scriptStorer`: the same script, batches and meta bytes) driven by the same
   * Effect callers as `store`, each store an `Effect.promise`: what an Effect program pays to run
   * raw's wire work, without this library's store path. Fields as `store`'s.
   */
  store_effect: Effect.gen(function* () {
    const c = yield* Effect.promise(raw)
    yield* Effect.promise(() => c.scriptLoad(storeScript.source))
    const storeRaw = scriptStorer(c)
    const out = yield* timedStores((ids) =>
      callers(param ?? 100, ids.length, (i) => Effect.promise(() => storeRaw(ids[i]!, metaJson(ids[i]!, { x: i }))))
    )
    yield* Effect.promise(() => c.quit())
    return out
  }),
  get: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const ids = Array.from({ length: n }, () => randomUUID())
    yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { x: i }), { concurrency: 100, discard: true })
    const k = param ?? 100
    yield* callers(k, warmUp(n), (i) => backend.get(ids[i]!))
    const t = performance.now()
    yield* callers(k, n, (i) => backend.get(ids[i]!))
    return { ops: n / ((performance.now() - t) / 1000) }
  }),
  getmany: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const ids = Array.from({ length: 1000 }, () => randomUUID())
    yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { x: i }), { concurrency: 100, discard: true })
    // Both ways of reading them all, call by call in alternating order: `getAll` (the array) and
    // `getMany` drained (the Stream).
    const all = Effect.flatMap(backend.getAll(ids), (got) =>
      got.length === ids.length ? Effect.void : Effect.die(`getAll returned ${got.length}`)
    )
    const stream = Effect.flatMap(Stream.runCount(backend.getMany(ids)), (got) =>
      got === ids.length ? Effect.void : Effect.die(`getMany returned ${got}`)
    )
    // The least a drained Stream can add to the read: `getAll`, then a one-item Stream drained
    // (Effect's fixed cost of running a Stream, whatever it carries).
    const floor = Effect.zipRight(all, Effect.asVoid(Stream.runCount(Stream.succeed(1))))
    const ways = [all, stream, floor]
    for (let r = 0; r < GETMANY_WARM_UP; r++) for (const way of ways) yield* way
    const ms = [0, 0, 0]
    const timed = (self: Effect.Effect<void, unknown>) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Effect.map(self, () => performance.now() - t)
      })
    // Each round runs the three ways, starting from a different one each time.
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < ways.length; j++) {
        const w = (r + j) % ways.length
        ms[w] = ms[w]! + (yield* timed(ways[w]!))
      }
    }
    return {
      ops: (1000 * n) / ms[0]!,
      wall_ms: ms[0]! / n,
      stream_ops: (1000 * n) / ms[1]!,
      floor_ops: (1000 * n) / ms[2]!
    }
  }),
  wakeup: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const probe = yield* Effect.promise(raw)
    // `param` other tasks watched all along (never written): the routing and the subscriber hold them.
    const others = param ?? 0
    if (others > 0) {
      const consumer = yield* ResultConsumer.ResultConsumer
      yield* consumer.watch(Array.from({ length: others }, () => randomUUID())).pipe(Stream.runDrain, Effect.forkScoped)
      yield* Effect.promise(() => untilChannels(probe, (k) => k >= others))
    }
    const producer = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), "wakeup_producer", url, "0"],
      {
        stdio: ["pipe", "inherit", "inherit"]
      }
    )
    const lat: Array<number> = []
    for (let i = 0; i < n + 10; i++) {
      const id = randomUUID()
      const waiter = yield* backend.waitFor(id, { timeout: "10 seconds" }).pipe(
        Effect.map((meta) => monoMs() - (meta.result as { t0: number }).t0),
        Effect.fork
      )
      // Ask for the store only once the waiter's subscription is on the server.
      yield* Effect.promise(async () => {
        while (((await probe.pubSubNumSub(`celery-task-meta-${id}`))[`celery-task-meta-${id}`] ?? 0) < 1) {
          await new Promise((r) => setImmediate(r))
        }
      })
      producer.stdin.write(`${id}\n`)
      const ms = yield* waiter.await.pipe(Effect.flatten)
      if (i >= 10) lat.push(ms)
    }
    producer.stdin.end()
    yield* Effect.promise(() => probe.quit())
    return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
  }).pipe(Effect.scoped),
  fanin: Effect.gen(function* () {
    const consumer = yield* ResultConsumer.ResultConsumer
    const probe = yield* Effect.promise(raw)
    const ids = Array.from({ length: n }, () => randomUUID())
    const mem0 = yield* memory
    const allReady = yield* Deferred.make<number>()
    let ready = 0
    const t = performance.now()
    yield* consumer.watch(ids).pipe(
      Stream.runForEach((e) =>
        Either.isRight(e) && TaskState.isReady(e.right.status) && ++ready === n
          ? Deferred.succeed(allReady, monoMs())
          : Effect.void
      ),
      Effect.forkScoped
    )
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    const subS = (performance.now() - t) / 1000
    const mem1 = yield* memory
    const writer = spawn("/usr/bin/python3", [Path.join(here, "celery_bench.py"), "fanin_writer", url, String(n)], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    let out = ""
    writer.stdout.on("data", (d: Buffer) => (out += d.toString()))
    const writerDone = new Promise<void>((r) => writer.on("exit", () => r()))
    writer.stdin.end(ids.join("\n") + "\n")
    const done = yield* Deferred.await(allReady)
    yield* Effect.promise(() => writerDone)
    const w = JSON.parse(out.trim().split("\n").pop()!) as { start: number; end: number }
    // The watch above was the process's first; the fan-in's channels are released once delivered.
    const secondS = yield* secondWatch(consumer, probe)
    yield* Effect.promise(() => probe.quit())
    return {
      subscribe_per_s: n / subS,
      subscribe_second_per_s: n / secondS,
      rss_per_task: (mem1.rss - mem0.rss) / n,
      heap_per_task: (mem1.heap - mem0.heap) / n,
      after_last_write_s: done / 1000 - w.end,
      total_s: done / 1000 - w.start
    }
  }).pipe(Effect.scoped),
  watch100k: Effect.gen(function* () {
    const consumer = yield* ResultConsumer.ResultConsumer
    const probe = yield* Effect.promise(raw)
    // The process's first watch: memory and a cold subscribe rate (JIT, modules' first use).
    const first = Array.from({ length: n }, () => randomUUID())
    const mem0 = yield* memory
    const t0 = performance.now()
    const firstScope = yield* Scope.make()
    yield* consumer.watch(first).pipe(Stream.runDrain, Effect.forkIn(firstScope))
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    const firstS = (performance.now() - t0) / 1000
    const mem1 = yield* memory
    yield* Scope.close(firstScope, Exit.void)
    const subS = yield* secondWatch(consumer, probe)
    // Kill the subscriber connection; resync = until every channel is subscribed again.
    yield* Effect.promise(() => probe.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
    const t1 = performance.now()
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    const resyncS = (performance.now() - t1) / 1000
    yield* Effect.promise(() => probe.quit())
    return {
      rss_per_task: (mem1.rss - mem0.rss) / n,
      heap_per_task: (mem1.heap - mem0.heap) / n,
      subscribe_first_per_s: n / firstS,
      subscribe_per_s: n / subS,
      resync_s: resyncS
    }
  }).pipe(Effect.scoped),
  /** `getAll` of `n` ready ids, `param` calls one after another: ms per call (median). */
  getall: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const ids = Array.from({ length: n }, () => randomUUID())
    yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { x: i }), { concurrency: 100, discard: true })
    const calls = param ?? 100
    const ms: Array<number> = []
    for (let r = 0; r < 2 * calls; r++) {
      const t = performance.now()
      const got = yield* backend.getAll(ids)
      if (got.length !== n) return yield* Effect.die(`getAll returned ${got.length}`)
      if (r >= calls) ms.push(performance.now() - t)
    }
    return { ms: percentile(ms, 0.5) }
  }),
  /**
   * `waitFor` of a task already finished, one call after another: latency, and the commands the
   * server counted per call (INFO commandstats; the background UNSUBSCRIBE included).
   */
  waitdone: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const probe = yield* Effect.promise(raw)
    const ids = Array.from({ length: 2 * n }, () => randomUUID())
    yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { x: i }), { concurrency: 100, discard: true })
    for (let i = n; i < 2 * n; i++) yield* backend.waitFor(ids[i]!, { timeout: "10 seconds" })
    yield* Effect.promise(() => untilChannels(probe, (k) => k === 0))
    yield* Effect.promise(() => resetStats(probe))
    // Calls alternate between a `timeout` (the case: the read bounded by it) and none.
    const lat: Array<number> = []
    const latNoTimeout: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      yield* i % 2 === 0 ? backend.waitFor(ids[i]!, { timeout: "10 seconds" }) : backend.waitFor(ids[i]!)
      ;(i % 2 === 0 ? lat : latNoTimeout).push(performance.now() - t)
    }
    yield* Effect.promise(() => untilChannels(probe, (k) => k === 0))
    const commands = yield* Effect.promise(() => commandsSince(probe))
    yield* Effect.promise(() => probe.quit())
    return {
      p50: percentile(lat, 0.5),
      p99: percentile(lat, 0.99),
      p50_no_timeout: percentile(latNoTimeout, 0.5),
      commands: commands / n
    }
  }),
  /** V8 heap bytes allocated per store, 100 in flight, batches of `n` (see `allocatedPerOp`). */
  storealloc: Effect.gen(function* () {
    const backend = yield* ResultBackend.ResultBackend
    const batch = (size: number) => {
      const ids = Array.from({ length: size }, () => randomUUID())
      return callers(100, size, (i) => backend.markAsDone(ids[i]!, { x: i }))
    }
    yield* batch(20 * n)
    return yield* Effect.promise(() => allocatedPerOp(n, (size) => Effect.runPromise(batch(size))))
  }),
  /**
   * The process's first watch of `n` tasks: memory per task, subscribe rate (cold), then the
   * subscriber connection killed and the time until every channel is subscribed again. Memory is
   * sampled once the watch's sync is over (a second watch, of one finished task, ends after it: the
   * subscriber runs one sync at a time), so it is what the watch keeps, not its sync's work in
   * flight (the MGETs, the non-string check of the missing keys).
   */
  watchcurve: Effect.gen(function* () {
    const consumer = yield* ResultConsumer.ResultConsumer
    const probe = yield* Effect.promise(raw)
    const ids = Array.from({ length: n }, () => randomUUID())
    const finished = randomUUID()
    yield* Effect.promise(() => probe.set(`celery-task-meta-${finished}`, metaJson(finished, 1)))
    const mem0 = yield* memory
    const t0 = performance.now()
    const firstScope = yield* Scope.make()
    yield* consumer.watch(ids).pipe(Stream.runDrain, Effect.forkIn(firstScope))
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    const subS = (performance.now() - t0) / 1000
    yield* consumer.watch([finished]).pipe(Stream.runDrain)
    const syncedS = (performance.now() - t0) / 1000
    const mem1 = yield* memory
    yield* Effect.promise(() => probe.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
    const t1 = performance.now()
    yield* Effect.promise(() => untilChannels(probe, (k) => k >= n))
    const resyncS = (performance.now() - t1) / 1000
    // Up to 100k: the first watch ended, a watch of as many new tasks in the same process (its
    // code compiled, its connection open), as raw subscribes a second time.
    yield* Scope.close(firstScope, Exit.void)
    const secondS = n <= SECOND_WATCH_MAX ? yield* secondWatch(consumer, probe) : Number.NaN
    yield* Effect.promise(() => probe.quit())
    return {
      ...memoryPerTask(mem0, mem1, n),
      subscribe_per_s: n / subS,
      synced_per_s: n / syncedS,
      subscribe_second_per_s: n / secondS,
      resync_s: resyncS
    }
  }).pipe(Effect.scoped)
}

const wakeupProducer = Effect.gen(function* () {
  const backend = yield* ResultBackend.ResultBackend
  const rl = Readline.createInterface({ input: process.stdin })
  const lines = Stream.fromAsyncIterable(rl, (e) => e)
  yield* lines.pipe(
    Stream.runForEach((line) =>
      Effect.sleep("5 millis").pipe(
        Effect.zipRight(Effect.suspend(() => backend.markAsDone(line.trim(), { t0: monoMs() })))
      )
    )
  )
})

const program = fig === "wakeup_producer" ? Effect.as(wakeupProducer, undefined) : figures[fig]!
const out = await Effect.runPromise(
  program.pipe(
    Effect.provide(RedisBackend.layerUrl(url) as Layer.Layer<Services, unknown>),
    Effect.map((x) => x)
  )
)
if (out !== undefined) console.log(JSON.stringify(out))

process.exit(0)
