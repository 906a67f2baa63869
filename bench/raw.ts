/**
 * The raw node-redis ceiling: the same wire work as Celery's backend with no library in between.
 * Usage: tsx bench/raw.ts <figure> <redis_url> <n>   → one JSON line.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Readline from "node:readline"
import { createClient } from "redis"
import { fileURLToPath } from "node:url"
// The same Lua source our store sends (the script text only; nothing else of the library runs here).
import { store as storeScript } from "../packages/redis/src/internal/scripts.js"
import {
  allocatedPerOp,
  commandsSince,
  cpuMicros,
  GETMANY_WARM_UP,
  inFlight,
  memory,
  memoryPerTask,
  metaJson,
  monoMs,
  percentile,
  resetStats,
  scriptStorer,
  SECOND_WATCH_MAX,
  serverCpuMicros,
  taskKey as key,
  untilChannels,
  warmUp
} from "./util.js"

type Client = ReturnType<typeof createClient>

const connect = async (url: string): Promise<Client> => {
  const c = createClient({ url })
  c.on("error", () => {})
  await c.connect()
  return c
}

const listener = (message: string) => void JSON.parse(message)

/**
 * `ids`' channels subscribed, 1,000 a SUBSCRIBE, all sent at once: seconds until the server counts
 * them all (timed as ours is).
 */
const subscribeAll = async (sub: Client, probe: Client, ids: ReadonlyArray<string>): Promise<number> => {
  const t = performance.now()
  const subscribed: Array<Promise<void>> = []
  for (let i = 0; i < ids.length; i += 1000) subscribed.push(sub.subscribe(ids.slice(i, i + 1000).map(key), listener))
  await Promise.all(subscribed)
  await untilChannels(probe, (k) => k >= ids.length)
  return (performance.now() - t) / 1000
}

/** Every channel released, then `n` new ones subscribed in the same process: `subscribeAll`'s seconds. */
const subscribeAgain = async (sub: Client, probe: Client, n: number): Promise<number> => {
  await sub.unsubscribe()
  await untilChannels(probe, (k) => k === 0)
  return subscribeAll(
    sub,
    probe,
    Array.from({ length: n }, () => randomUUID())
  )
}

// Celery's store: GET (duplicate guard) then MULTI SETEX PUBLISH EXEC.
const store = async (c: Client, id: string, value: string) => {
  const cur = await c.get(key(id))
  if (cur !== null && cur.startsWith('{"status": "SUCCESS"')) return
  await c.multi().setEx(key(id), 86400, value).publish(key(id), value).exec()
}

/** The figure's second knob, when it has one: callers in flight, other tasks watched, calls timed. */
const param = process.argv[5] === undefined ? undefined : Number(process.argv[5])

const figures: Record<string, (url: string, n: number) => Promise<unknown>> = {
  async store(url, n) {
    const c = await connect(url)
    const warm = Array.from({ length: warmUp(n) }, () => randomUUID())
    await inFlight(100, warm.length, (i) => store(c, warm[i]!, metaJson(warm[i]!, { x: i })))
    const ids = Array.from({ length: n }, () => randomUUID())
    const t = performance.now()
    await inFlight(100, n, (i) => store(c, ids[i]!, metaJson(ids[i]!, { x: i })))
    const s = (performance.now() - t) / 1000
    await c.quit()
    return { ops: n / s }
  },
  async store_script(url, n) {
    const c = await connect(url)
    await c.scriptLoad(storeScript.source)
    const store = scriptStorer(c)
    const k = param ?? 100
    const warm = Array.from({ length: warmUp(n) }, () => randomUUID())
    const t0 = performance.now()
    await inFlight(k, warm.length, (i) => store(warm[i]!, metaJson(warm[i]!, { x: i })))
    const coldS = (performance.now() - t0) / 1000
    const ids = Array.from({ length: n }, () => randomUUID())
    const server = await serverCpuMicros(c)
    const t = performance.now()
    const cpu = process.cpuUsage()
    await inFlight(k, n, (i) => store(ids[i]!, metaJson(ids[i]!, { x: i })))
    const s = (performance.now() - t) / 1000
    const cpuUs = cpuMicros(cpu) / n
    const serverUs = ((await serverCpuMicros(c)) - server) / n
    await c.quit()
    return {
      ops_script: n / s,
      ops_cold: warm.length / coldS,
      cpu_us_per_op: cpuUs,
      server_cpu_us_per_op: serverUs
    }
  },
  async get(url, n) {
    const c = await connect(url)
    const ids = Array.from({ length: n }, () => randomUUID())
    await inFlight(100, n, (i) => c.setEx(key(ids[i]!), 86400, metaJson(ids[i]!, { x: i })))
    const read = async (i: number) => {
      const v = await c.get(key(ids[i]!))
      if (v !== null) JSON.parse(v)
    }
    const k = param ?? 100
    await inFlight(k, warmUp(n), read)
    const t = performance.now()
    await inFlight(k, n, read)
    const s = (performance.now() - t) / 1000
    await c.quit()
    return { ops: n / s }
  },
  async getmany(url, n) {
    const c = await connect(url)
    const ids = Array.from({ length: 1000 }, () => randomUUID())
    await inFlight(100, ids.length, (i) => c.setEx(key(ids[i]!), 86400, metaJson(ids[i]!, { x: i })))
    // The keys are built from the ids in each call, as in raw's get and as every other side does.
    for (let r = 0; r < GETMANY_WARM_UP; r++) for (const v of await c.mGet(ids.map(key))) if (v !== null) JSON.parse(v)
    const t = performance.now()
    for (let r = 0; r < n; r++) {
      const vs = await c.mGet(ids.map(key))
      for (const v of vs) if (v !== null) JSON.parse(v)
    }
    const per = (performance.now() - t) / n
    await c.quit()
    // One way to read them all: the same figure stands in the getMany row.
    return { ops: 1000 / per, wall_ms: per, stream_ops: 1000 / per }
  },
  async wakeup(url, n) {
    const sub = await connect(url)
    // `param` other channels subscribed all along (never written), 1,000 a command.
    const others = param ?? 0
    if (others > 0) {
      const probe = await connect(url)
      const pending: Array<Promise<void>> = []
      for (let i = 0; i < others; i += 1000) {
        pending.push(
          sub.subscribe(
            Array.from({ length: Math.min(1000, others - i) }, () => key(randomUUID())),
            () => {}
          )
        )
      }
      await Promise.all(pending)
      await untilChannels(probe, (k) => k >= others)
      await probe.quit()
    }
    const producer = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), "wakeup_producer", url, String(n)],
      {
        stdio: ["pipe", "inherit", "inherit"]
      }
    )
    const lat: Array<number> = []
    for (let i = 0; i < n + 10; i++) {
      const id = randomUUID()
      const woke = new Promise<number>((resolve) => {
        void sub.subscribe(key(id), (message) => {
          // Woken = holding the decoded result, as Celery's and our figures are taken.
          const meta = JSON.parse(message) as { result: { t0: number } }
          resolve(monoMs() - meta.result.t0)
        })
      })
      // subscribe() resolves after the acknowledgement; only then ask for the store.
      await new Promise((r) => setImmediate(r))
      producer.stdin.write(`${id}\n`)
      const ms = await woke
      await sub.unsubscribe(key(id))
      if (i >= 10) lat.push(ms)
    }
    producer.stdin.end()
    await sub.quit()
    return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
  },
  // node-redis' own subscribe, 1,000 channels per SUBSCRIBE, all sent at once; timed as ours
  // (until the server counts every channel), memory taken as ours: on the process's first 100k,
  // then the rate again on a second 100k after the first is unsubscribed (steady state).
  async watch100k(url, n) {
    const sub = await connect(url)
    const probe = await connect(url)
    const first = Array.from({ length: n }, () => randomUUID())
    const mem0 = await memory()
    const firstS = await subscribeAll(sub, probe, first)
    const mem1 = await memory()
    const subS = await subscribeAgain(sub, probe, n)
    await probe.quit()
    await sub.quit()
    return {
      rss_per_task: (mem1.rss - mem0.rss) / n,
      heap_per_task: (mem1.heap - mem0.heap) / n,
      subscribe_first_per_s: n / firstS,
      subscribe_per_s: n / subS
    }
  },
  // A lossless watch's wire work with no library, in a fresh process as ours runs: each chunk's
  // SUBSCRIBE, then MGET of its keys on the command connection once acknowledged (a result stored
  // before the subscription is not missed), then a PING of the subscriber; timed as `watch100k`,
  // first and second 100k as there.
  async watch100k_sync(url, n) {
    const cmd = await connect(url)
    const sub = await connect(url)
    const probe = await connect(url)
    const watchAll = async (ids: ReadonlyArray<string>) => {
      const values = new Map<string, string>()
      const t = performance.now()
      const keys = ids.map(key)
      const synced: Array<Promise<void>> = []
      for (let i = 0; i < n; i += 1000) {
        const chunk = keys.slice(i, i + 1000)
        synced.push(
          sub.subscribe(chunk, listener).then(async () => {
            const vs = await cmd.mGet(chunk)
            for (let j = 0; j < chunk.length; j++) if (vs[j] !== null) values.set(chunk[j]!, vs[j]!)
          })
        )
      }
      await Promise.all(synced)
      await sub.ping()
      await untilChannels(probe, (k) => k >= n)
      return (performance.now() - t) / 1000
    }
    const firstS = await watchAll(Array.from({ length: n }, () => randomUUID()))
    await sub.unsubscribe()
    await untilChannels(probe, (k) => k === 0)
    const subS = await watchAll(Array.from({ length: n }, () => randomUUID()))
    await Promise.all([probe.quit(), sub.quit(), cmd.quit()])
    return { subscribe_sync_first_per_s: n / firstS, subscribe_sync_per_s: n / subS }
  },
  /** MGET of `n` keys + JSON.parse, `param` calls one after another: ms per call (median). */
  async getall(url, n) {
    const c = await connect(url)
    const ids = Array.from({ length: n }, () => randomUUID())
    await inFlight(100, n, (i) => c.setEx(key(ids[i]!), 86400, metaJson(ids[i]!, { x: i })))
    const calls = param ?? 100
    const ms: Array<number> = []
    for (let r = 0; r < 2 * calls; r++) {
      const t = performance.now()
      for (const v of await c.mGet(ids.map(key))) if (v !== null) JSON.parse(v)
      if (r >= calls) ms.push(performance.now() - t)
    }
    await c.quit()
    return { ms: percentile(ms, 0.5) }
  },
  /** A finished task read as Celery's `get` does: GET + JSON.parse, one after another. */
  async waitdone(url, n) {
    const c = await connect(url)
    const probe = await connect(url)
    const ids = Array.from({ length: 2 * n }, () => randomUUID())
    await inFlight(100, ids.length, (i) => c.setEx(key(ids[i]!), 86400, metaJson(ids[i]!, { x: i })))
    const read = async (id: string) => {
      const v = await c.get(key(id))
      if (v !== null) JSON.parse(v)
    }
    for (let i = n; i < 2 * n; i++) await read(ids[i]!)
    await resetStats(probe)
    const lat: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      await read(ids[i]!)
      lat.push(performance.now() - t)
    }
    const commands = await commandsSince(probe)
    await Promise.all([c.quit(), probe.quit()])
    return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), commands: commands / n }
  },
  /** V8 heap bytes allocated per store of our script, 100 in flight (see `allocatedPerOp`). */
  async storealloc(url, n) {
    const c = await connect(url)
    await c.scriptLoad(storeScript.source)
    const store = scriptStorer(c)
    const batch = (size: number) => {
      const ids = Array.from({ length: size }, () => randomUUID())
      return inFlight(100, size, (i) => store(ids[i]!, metaJson(ids[i]!, { x: i })))
    }
    await batch(20 * n)
    const r = await allocatedPerOp(n, batch)
    await c.quit()
    return r
  },
  /**
   * node-redis' plain subscribe of `n` channels, 1,000 a command, all sent at once, in a fresh
   * process: memory per channel and rate; then the subscriber killed and node-redis' own
   * resubscription timed.
   */
  async watchcurve(url, n) {
    const sub = await connect(url)
    const probe = await connect(url)
    const ids = Array.from({ length: n }, () => randomUUID())
    const mem0 = await memory()
    const subS = await subscribeAll(sub, probe, ids)
    const mem1 = await memory()
    await probe.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"])
    const t1 = performance.now()
    // node-redis resubscribes every channel in one SUBSCRIBE; at 1,000,000 channels it was seen
    // reconnecting over and over without ever getting there: given up after 60 s (no figure).
    let gaveUp = false
    const limit = setTimeout(() => (gaveUp = true), 60_000)
    await untilChannels(probe, (k) => k >= n || gaveUp)
    clearTimeout(limit)
    const resyncS = gaveUp ? Number.NaN : (performance.now() - t1) / 1000
    // Up to 100k: every channel released, as many new ones subscribed in the same process.
    const secondS = !gaveUp && n <= SECOND_WATCH_MAX ? await subscribeAgain(sub, probe, n) : Number.NaN
    await probe.quit()
    const out = { ...memoryPerTask(mem0, mem1, n), subscribe_per_s: n / subS }
    if (gaveUp) {
      // The subscriber is still reconnecting: its quit would wait for it.
      console.log(JSON.stringify({ ...out, resync_gave_up: 1 }))
      process.exit(0)
    }
    await sub.quit()
    return { ...out, subscribe_second_per_s: n / secondS, resync_s: resyncS }
  },
  async wakeup_producer(url) {
    const c = await connect(url)
    const rl = Readline.createInterface({ input: process.stdin })
    for await (const line of rl) {
      const id = line.trim()
      await new Promise((r) => setTimeout(r, 5))
      await store(c, id, metaJson(id, { t0: monoMs() }))
    }
    await c.quit()
    return undefined
  }
}

const [fig, url, n] = process.argv.slice(2)
const out = await figures[fig!]!(url!, Number(n))
if (out !== undefined) console.log(JSON.stringify(out))
