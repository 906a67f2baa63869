/** Shared bench helpers. */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import * as V8 from "node:v8"
import type { createClient } from "redis"
import { store as storeScript } from "../packages/redis/src/internal/scripts.js"
import { privateServerFlags } from "../test-support/RedisServer.js"

/** CLOCK_MONOTONIC in milliseconds, the same clock as Python's time.monotonic(). */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6

/**
 * The process's CPU time (user + system) since `since`, in µs: a client-side cost per operation
 * that a loaded machine distorts far less than throughput (it still counts the client's own
 * work only, not the server's).
 */
export const cpuMicros = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since)
  return d.user + d.system
}

/**
 * The server's CPU time (user + system, INFO cpu) in µs: with `cpuMicros`, how a figure's work
 * splits between the client and redis-server, which share the machine's cores.
 */
export const serverCpuMicros = async (probe: {
  readonly info: (section: string) => Promise<string>
}): Promise<number> => {
  const info = await probe.info("cpu")
  const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN)
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6
}

/** A task's key (and channel) under Celery's default prefix. */
export const taskKey = (id: string): string => `celery-task-meta-${id}`

/**
 * Our store's wire work with no library: the guarded store script, the stores of one tick sharing
 * one EVALSHA of at most 32 keys (as `RedisClient.batched` coalesces them). The ceiling of that
 * design as node-redis itself can drive it: no Effect, no meta encoding beyond raw's own. The
 * script must be loaded (`scriptLoad(storeScript.source)`).
 */
export const scriptStorer = (c: ReturnType<typeof createClient>) => {
  let items: Array<readonly [string, string, () => void]> = []
  const flush = () => {
    const batch = items
    items = []
    for (let i = 0; i < batch.length; i += 32) {
      const part = batch.slice(i, i + 32)
      const keys = part.map((x) => x[0])
      const args = ["86400", "1", ...part.map((x) => x[1])]
      void c.evalSha(storeScript.sha, { keys, arguments: args }).then(() => {
        for (const x of part) x[2]()
      })
    }
  }
  return (id: string, value: string) =>
    new Promise<void>((resolve) => {
      if (items.length === 0) queueMicrotask(flush)
      items.push([taskKey(id), value, resolve])
    })
}

/** Run `n` tasks with at most `k` in flight. */
export const inFlight = async (k: number, n: number, task: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      await task(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(k, n) }, worker))
}

/**
 * Untimed operations before a throughput figure, for every implementation: as many as are timed,
 * so what is timed is steady state (Node's JIT, V8's young generation grown to size), not
 * start-up. Measured here: our first 100k stores ran at about 70% of the next 100k; the targets'
 * store row therefore warms up and times 200k stores, and reports the warm-up's rate as well.
 */
export const warmUp = (n: number): number => n

/** The largest watch the watch curve follows with a second one, in the same process. */
export const SECOND_WATCH_MAX = 100_000

/** Untimed get-many calls before the timed ones. */
export const GETMANY_WARM_UP = 20

export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? Number.NaN
}

/** A Celery-shaped SUCCESS meta as Python writes it (about 150 bytes). */
export const metaJson = (id: string, result: unknown): string =>
  `{"status": "SUCCESS", "result": ${JSON.stringify(result).replace(/,/g, ", ").replace(/:/g, ": ")}, "traceback": null, "children": [], "date_done": "2026-11-22T13:50:36.972810", "task_id": "${id}"}`

export { performance }

/**
 * RSS and V8 heap in use after full GCs and a pause in which V8 and the allocators return freed
 * pages (needs --expose-gc). RSS still swings between identical runs; the heap figure is steady.
 * `heapTotal` is the heap V8 holds from the system, `external` the memory of Buffers and other
 * objects outside the heap; RSS less both is native memory (code, the allocator's free lists).
 */
export const memory = async (): Promise<{
  readonly rss: number
  readonly heap: number
  readonly heapTotal: number
  readonly external: number
}> => {
  globalThis.gc?.()
  globalThis.gc?.()
  await new Promise((r) => setTimeout(r, 300))
  globalThis.gc?.()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external }
}

/** The per-task memory figures between two `memory` samples. */
export const memoryPerTask = (
  before: Awaited<ReturnType<typeof memory>>,
  after: Awaited<ReturnType<typeof memory>>,
  n: number
) => ({
  rss_per_task: (after.rss - before.rss) / n,
  heap_per_task: (after.heap - before.heap) / n,
  heap_total_per_task: (after.heapTotal - before.heapTotal) / n,
  external_per_task: (after.external - before.external) / n,
  native_per_task:
    (after.rss - after.heapTotal - after.external - (before.rss - before.heapTotal - before.external)) / n
})

/** Channels the server counts as subscribed (INFO stats), polled until `pred` holds. */
export const untilChannels = async (
  probe: { readonly info: (section: string) => Promise<string> },
  pred: (k: number) => boolean
): Promise<void> => {
  const count = async () => Number(/pubsub_channels:(\d+)/.exec(await probe.info("stats"))?.[1] ?? 0)
  while (!pred(await count())) await new Promise((r) => setTimeout(r, 2))
}

/** A free TCP port on loopback. */
export const freePort = (): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    const s = Net.createServer()
    s.on("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0))
    })
  })

/**
 * A private redis-server on a free loopback port, persisting nothing, ready when it says so.
 * `pinCpu` runs it under `taskset -c <cpu>`.
 */
export const startRedis = async (options: { readonly pinCpu?: string | undefined } = {}) => {
  const port = await freePort()
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "bench-redis-"))
  const redisArgs = ["--port", String(port), ...privateServerFlags(dir), "--maxclients", "10000"]
  const proc =
    options.pinCpu !== undefined
      ? spawn("taskset", ["-c", options.pinCpu, "redis-server", ...redisArgs])
      : spawn("redis-server", redisArgs)
  await new Promise<void>((resolve, reject) => {
    let out = ""
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      if (out.includes("Ready to accept connections")) resolve()
    })
    proc.on("exit", () => reject(new Error(`redis-server exited: ${out}`)))
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    stop: () => {
      proc.kill("SIGKILL")
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** CONFIG RESETSTAT: commandstats count from here. */
export const resetStats = async (probe: {
  readonly sendCommand: (args: Array<string>) => Promise<unknown>
}): Promise<void> => {
  await probe.sendCommand(["CONFIG", "RESETSTAT"])
}

/** Commands the server ran since `resetStats`, the probe's own INFO and CONFIG left out. */
export const commandsSince = async (probe: {
  readonly info: (section: string) => Promise<string>
}): Promise<number> => {
  let calls = 0
  for (const m of (await probe.info("commandstats")).matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) {
    if (m[1] !== "info" && m[1] !== "config") calls += Number(m[2])
  }
  return calls
}

/**
 * V8 heap bytes allocated per operation: batches of `size` operations between two reads of the
 * heap in use, keeping only batches during which no collection ran (the young generation must be
 * large enough: run with --max-semi-space-size=64 or more). Median of the clean batches; NaN when
 * none was clean. Buffers outside the heap (node-redis' write buffers) are in `external_per_op`.
 */
export const allocatedPerOp = async (
  size: number,
  run: (size: number) => Promise<unknown>
): Promise<{ readonly bytes_per_op: number; readonly external_per_op: number; readonly clean_batches: number }> => {
  const heap: Array<number> = []
  const external: Array<number> = []
  for (let b = 0; b < 12; b++) {
    globalThis.gc?.()
    const profiler = new V8.GCProfiler()
    const m0 = process.memoryUsage()
    profiler.start()
    await run(size)
    const m1 = process.memoryUsage()
    const gcs = profiler.stop().statistics.length
    if (gcs === 0) {
      heap.push((m1.heapUsed - m0.heapUsed) / size)
      external.push((m1.external - m0.external) / size)
    }
  }
  const med = (xs: Array<number>) => (xs.length === 0 ? Number.NaN : percentile(xs, 0.5))
  return { bytes_per_op: med(heap), external_per_op: med(external), clean_batches: heap.length }
}
