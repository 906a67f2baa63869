/**
 * How cost grows with the work, and the issue's targets table, ours beside raw node-redis in the
 * same run. Every point is a fresh child process (bench/ours.ts or bench/raw.ts, one figure), so
 * memory is clean per size; ours and raw alternate, the order rotating each rep.
 *
 *   tsx bench/curves.ts [--curves] [--targets] [--reps N] [--only id,…] [--smoke]
 *
 * `--curves` writes bench/curves/*.svg and the "Curves" tables of bench/RESULTS.md; `--targets`
 * writes its "Targets" table (both when neither is given). Raw figures go to bench/curves/data.json
 * as well. `--smoke` runs tiny sizes once and writes nothing (CI keeps this from rotting).
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Series, short, svg } from "./plot.js"
import { startRedis } from "./util.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.join(here, "..")
const args = process.argv.slice(2)
const smoke = args.includes("--smoke")
const doCurves = args.includes("--curves") || !args.includes("--targets")
const doTargets = args.includes("--targets") || !args.includes("--curves")
const reps = smoke ? 1 : Number(args[args.indexOf("--reps") + 1] ?? 3) || 3
const cpus = Os.cpus().length
const pin = !smoke && spawnSync("taskset", ["--version"]).status === 0 && cpus >= 2
const outDir = Path.join(here, "curves")
/**
 * `--only a,b`: run only the jobs whose id starts with one of these. The tables are printed but
 * RESULTS.md is left alone (the rows not run would be written as "–").
 */
const only = args.includes("--only") ? args[args.indexOf("--only") + 1]!.split(",") : undefined
/** `--replay log1,log2`: rebuild the results from earlier runs' stderr instead of measuring. */
const replay = args.includes("--replay") ? args[args.indexOf("--replay") + 1]!.split(",") : undefined

type Impl = "ours" | "raw"
type Rec = Record<string, number>
const oursEnv = { ...process.env, TSX_TSCONFIG_PATH: Path.join(root, "tsconfig.base.json") }

const runOne = (
  impl: Impl,
  fig: string,
  url: string,
  n: number,
  param?: number,
  flags: ReadonlyArray<string> = []
): Rec => {
  const argv = [
    ...flags,
    "--expose-gc",
    "--import",
    "tsx",
    Path.join(here, `${impl}.ts`),
    fig,
    url,
    String(n),
    ...(param === undefined ? [] : [String(param)])
  ]
  const [cmd, full] = pin ? ["taskset", ["-c", "1", process.execPath, ...argv]] : [process.execPath, argv]
  const r = spawnSync(cmd, full, { encoding: "utf8", timeout: 600_000, cwd: root, env: oursEnv, maxBuffer: 1 << 24 })
  const last = (r.stdout ?? "").trim().split("\n").pop() ?? ""
  if (r.status !== 0 || !last.startsWith("{"))
    throw new Error(`${impl} ${fig} ${n} ${param ?? ""} failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(last) as Rec
}

const median = (xs: ReadonlyArray<number>) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (x: number) =>
  !Number.isFinite(x)
    ? "–"
    : Math.abs(x) >= 1000
      ? Math.round(x).toLocaleString("en-US")
      : Math.abs(x) >= 10
        ? x.toFixed(1)
        : Math.abs(x) >= 0.1
          ? x.toFixed(2)
          : x.toPrecision(2)
const cell = (xs: ReadonlyArray<number>) =>
  xs.length === 0
    ? "–"
    : xs.length === 1
      ? fmt(xs[0]!)
      : `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
const ratioCell = (xs: ReadonlyArray<number>) =>
  xs.length === 0
    ? "–"
    : xs.length === 1
      ? `${xs[0]!.toFixed(2)}×`
      : `${median(xs).toFixed(2)}× (${Math.min(...xs).toFixed(2)}×–${Math.max(...xs).toFixed(2)}×)`

/** One measured point: ours and raw (when raw has one), `reps` times, alternating. */
interface Job {
  readonly id: string
  readonly ours: readonly [fig: string, n: number, param?: number]
  readonly raw?: readonly [fig: string, n: number, param?: number]
  readonly flags?: ReadonlyArray<string>
  readonly reps?: number
}

const runJobs = (jobs: ReadonlyArray<Job>, url: string, flush: () => void): Map<string, Record<Impl, Array<Rec>>> => {
  const out = new Map<string, Record<Impl, Array<Rec>>>()
  if (replay !== undefined) {
    // Lines "<id> rep i/n <impl>: <json>", as written below; later logs add to earlier ones.
    for (const file of replay) {
      for (const m of Fs.readFileSync(file, "utf8").matchAll(/^(\S+) rep \d+\/\d+ (ours|raw): (\{.*\})$/gm)) {
        if (!jobs.some((j) => j.id === m[1])) continue
        const got = out.get(m[1]!) ?? { ours: [], raw: [] }
        got[m[2] as Impl].push(JSON.parse(m[3]!) as Rec)
        out.set(m[1]!, got)
      }
    }
    return out
  }
  for (const job of jobs) {
    if (only !== undefined && !only.some((p) => job.id.startsWith(p))) continue
    const got: Record<Impl, Array<Rec>> = { ours: [], raw: [] }
    out.set(job.id, got)
    const n = Math.min(reps, job.reps ?? reps)
    for (let rep = 0; rep < n; rep++) {
      const order: Array<Impl> = rep % 2 === 0 ? ["ours", "raw"] : ["raw", "ours"]
      for (const impl of order) {
        const spec = impl === "ours" ? job.ours : job.raw
        if (spec === undefined) continue
        flush()
        const r = runOne(impl, spec[0], url, spec[1], spec[2], job.flags)
        got[impl].push(r)
        process.stderr.write(`${job.id} rep ${rep + 1}/${n} ${impl}: ${JSON.stringify(r)}\n`)
      }
    }
  }
  return out
}

// ---- sizes ------------------------------------------------------------------------------------

const S = smoke
// Smoke: one point of each curve (every child process costs ~1 s of tsx start-up).
const inflight = S ? [10] : [1, 10, 100, 1000]
const opsAt = (k: number) => (S ? 200 : k === 1 ? 3000 : k === 10 ? 10_000 : 30_000)
const idCounts = S ? [10] : [10, 100, 1000, 10_000]
const callsAt = (m: number) => (S ? 3 : m <= 10 ? 1000 : m <= 100 ? 500 : m <= 1000 ? 100 : 20)
const watchSizes = S ? [1000] : [10_000, 100_000, 1_000_000]
const othersWatched = S ? [1000] : [0, 10_000, 100_000]
const wakeups = S ? 5 : 200

const curveJobs: Array<Job> = [
  ...inflight.map((k): Job => ({ id: `store@${k}`, ours: ["store", opsAt(k), k], raw: ["store_script", opsAt(k), k] })),
  ...(S ? [] : inflight.map((k): Job => ({ id: `get@${k}`, ours: ["get", opsAt(k), k], raw: ["get", opsAt(k), k] }))),
  ...idCounts.map((m): Job => ({ id: `getall@${m}`, ours: ["getall", m, callsAt(m)], raw: ["getall", m, callsAt(m)] })),
  // The 1M point takes ~10 s a side: one rep.
  ...watchSizes.map((w): Job => ({
    id: `watch@${w}`,
    ours: ["watchcurve", w],
    raw: ["watchcurve", w],
    reps: w >= 1_000_000 ? 1 : reps
  })),
  ...othersWatched.map((b): Job => ({ id: `wakeup@${b}`, ours: ["wakeup", wakeups, b], raw: ["wakeup", wakeups, b] }))
]

// The young generation large enough that batches of 1,000 stores run without a collection.
const allocFlags = ["--max-semi-space-size=64"]
// Smoke: the figures the curves do not already run.
const targetJobs: Array<Job> = S
  ? [
      { id: "t_alloc", ours: ["storealloc", 100], raw: ["storealloc", 100], flags: allocFlags },
      { id: "t_waitdone", ours: ["waitdone", 20], raw: ["waitdone", 20] }
    ]
  : [
      { id: "t_store", ours: ["store", S ? 300 : 200_000, 100], raw: ["store_script", S ? 300 : 200_000, 100] },
      {
        id: "t_storefx",
        ours: ["store_effect", S ? 300 : 200_000, 100],
        raw: ["store_script", S ? 300 : 200_000, 100]
      },
      { id: "t_alloc", ours: ["storealloc", S ? 100 : 1000], raw: ["storealloc", S ? 100 : 1000], flags: allocFlags },
      { id: "t_getmany", ours: ["getmany", S ? 2 : 200], raw: ["getmany", S ? 2 : 200] },
      { id: "t_waitdone", ours: ["waitdone", S ? 20 : 2000], raw: ["waitdone", S ? 20 : 2000] },
      { id: "t_wakeup", ours: ["wakeup", S ? 5 : 500], raw: ["wakeup", S ? 5 : 500] },
      { id: "t_sub10k", ours: ["watchcurve", S ? 1000 : 10_000], raw: ["watchcurve", S ? 1000 : 10_000] },
      { id: "t_watch1m", ours: ["watchcurve", S ? 2000 : 1_000_000] }
    ]

// ---- output -----------------------------------------------------------------------------------

const field = (rs: ReadonlyArray<Rec>, key: string) =>
  rs.map((r) => r[key]).filter((x): x is number => typeof x === "number")
const paired = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a.slice(0, Math.min(a.length, b.length)).map((x, i) => x / b[i]!)

const targetsTable = (res: Map<string, Record<Impl, Array<Rec>>>): string => {
  const get = (id: string) => res.get(id) ?? { ours: [], raw: [] }
  const row = (figure: string, id: string, key: string, rawKey: string, target: string, unit = "") => {
    const g = get(id)
    const o = field(g.ours, key)
    const r = field(g.raw, rawKey)
    return `| ${figure} | ${cell(o)}${unit} | ${cell(r)}${unit} | ${ratioCell(paired(o, r))} | ${target} |`
  }
  /** Ours against ours-side figure of another job, in the raw column (paired by rep number). */
  const across = (figure: string, id: string, key: string, otherId: string, otherKey: string) => {
    const o = field(get(id).ours, key)
    const r = field(get(otherId).ours, otherKey)
    return `| ${figure} | ${cell(o)} | ${cell(r)} | ${ratioCell(paired(o, r))} |  |`
  }
  return [
    "| figure | ours | raw node-redis | ours ÷ raw (paired by rep) | target |",
    "|---|---|---|---|---|",
    row(
      "store, 100 in flight, results/s (raw: our store script, ≤ 32 stores an EVALSHA)",
      "t_store",
      "ops",
      "ops_script",
      "≥ 0.9×"
    ),
    row(
      "… the process's first 200k stores (the warm-up before the timed ones), results/s",
      "t_store",
      "ops_cold",
      "ops_cold",
      ""
    ),
    row("… client CPU µs per store (user + system, the timed stores)", "t_store", "cpu_us_per_op", "cpu_us_per_op", ""),
    row(
      "… redis-server CPU µs per store (INFO cpu, the timed stores)",
      "t_store",
      "server_cpu_us_per_op",
      "server_cpu_us_per_op",
      ""
    ),
    row(
      "… raw's store driven by Effect callers (Effect.promise, no library; a job of its own), results/s",
      "t_storefx",
      "ops",
      "ops_script",
      ""
    ),
    row("… … its client CPU µs per store", "t_storefx", "cpu_us_per_op", "cpu_us_per_op", ""),
    across(
      "… ours ÷ raw's store driven by Effect callers (raw column: the row above's), results/s",
      "t_store",
      "ops",
      "t_storefx",
      "ops"
    ),
    row(
      "bytes allocated per store, V8 heap (100 in flight, batches of 1,000 with no GC)",
      "t_alloc",
      "bytes_per_op",
      "bytes_per_op",
      "≤ 2.5 kB",
      " B"
    ),
    row(
      "getMany of 1,000 ready, drained, calls/s (raw: MGET + JSON.parse)",
      "t_getmany",
      "stream_ops",
      "stream_ops",
      "≥ 0.9×"
    ),
    row("… getAll of the same 1,000, calls/s", "t_getmany", "ops", "ops", ""),
    row(
      "… getAll, then a one-item Stream drained (the least a drained Stream adds), calls/s",
      "t_getmany",
      "floor_ops",
      "ops",
      ""
    ),
    row(
      "waitFor on an already finished task, commands per call (raw: GET)",
      "t_waitdone",
      "commands",
      "commands",
      "1 round trip"
    ),
    row("… latency p50 ms, with a timeout (raw: GET + JSON.parse)", "t_waitdone", "p50", "p50", "≤ 1.2×"),
    row("… latency p50 ms, no timeout given", "t_waitdone", "p50_no_timeout", "p50", ""),
    row("… latency p99 ms", "t_waitdone", "p99", "p99", ""),
    row("wake-up, store called → waiter woke, p50 ms", "t_wakeup", "p50", "p50", ""),
    row("wake-up p99 ms", "t_wakeup", "p99", "p99", "≤ 1.2×"),
    row(
      "first watch of 10k in a fresh process, channels/s (raw: plain subscribe, 1,000 a command)",
      "t_sub10k",
      "subscribe_per_s",
      "subscribe_per_s",
      "≥ 1.0×"
    ),
    row(
      "… the same watch synced (SUBSCRIBE, MGET, PING done), channels/s (raw: as above)",
      "t_sub10k",
      "synced_per_s",
      "subscribe_per_s",
      ""
    ),
    row(
      "… a second watch of 10k in the same process, the first one ended, channels/s (raw: subscribes again)",
      "t_sub10k",
      "subscribe_second_per_s",
      "subscribe_second_per_s",
      ""
    ),
    row(
      "RSS bytes per watched task at 1,000,000 watched",
      "t_watch1m",
      "rss_per_task",
      "rss_per_task",
      "≤ 200 B",
      " B"
    ),
    row("… V8 heap bytes per watched task at 1,000,000", "t_watch1m", "heap_per_task", "heap_per_task", "", " B"),
    row(
      "… RSS less the heap V8 holds and external memory, bytes per task",
      "t_watch1m",
      "native_per_task",
      "native_per_task",
      "",
      " B"
    ),
    row("… subscribe channels/s, first watch of 1,000,000", "t_watch1m", "subscribe_per_s", "subscribe_per_s", "")
  ].join("\n")
}

const curvesSection = (res: Map<string, Record<Impl, Array<Rec>>>): string => {
  const med = (id: string, impl: Impl, key: string) => median(field(res.get(id)?.[impl] ?? [], key))
  const line = (
    name: string,
    xs: ReadonlyArray<number>,
    id: (x: number) => string,
    impl: Impl,
    key: string,
    scale = 1,
    dashed = false
  ): Series => ({ name, points: xs.map((x) => [x, med(id(x), impl, key) * scale] as const), dashed })
  const charts: Array<[file: string, caption: string, doc: string]> = []
  const chart = (file: string, caption: string, c: Parameters<typeof svg>[0]) => charts.push([file, caption, svg(c)])
  chart("store.svg", "store throughput by callers in flight", {
    title: "store (markAsDone) throughput",
    xLabel: "callers in flight",
    yLabel: "results/s",
    logX: true,
    series: [
      line("ours", inflight, (k) => `store@${k}`, "ours", "ops"),
      line("raw node-redis, our store script", inflight, (k) => `store@${k}`, "raw", "ops_script")
    ]
  })
  chart("get.svg", "get throughput by callers in flight", {
    title: "get throughput",
    xLabel: "callers in flight",
    yLabel: "reads/s",
    logX: true,
    series: [
      line("ours (get)", inflight, (k) => `get@${k}`, "ours", "ops"),
      line("raw node-redis (GET + JSON.parse)", inflight, (k) => `get@${k}`, "raw", "ops")
    ]
  })
  chart("getall.svg", "getAll latency by ids", {
    title: "getAll of n ready ids, latency per call",
    xLabel: "ids",
    yLabel: "ms per call (median)",
    logX: true,
    logY: true,
    series: [
      line("ours (getAll)", idCounts, (m) => `getall@${m}`, "ours", "ms"),
      line("raw node-redis (MGET + JSON.parse)", idCounts, (m) => `getall@${m}`, "raw", "ms")
    ]
  })
  chart("watch-memory.svg", "memory per watched task by tasks watched", {
    title: "memory per watched task",
    xLabel: "tasks watched (first watch, fresh process)",
    yLabel: "bytes per task",
    logX: true,
    series: [
      line("ours RSS", watchSizes, (w) => `watch@${w}`, "ours", "rss_per_task"),
      line("raw subscribe RSS", watchSizes, (w) => `watch@${w}`, "raw", "rss_per_task"),
      line("ours V8 heap", watchSizes, (w) => `watch@${w}`, "ours", "heap_per_task", 1, true),
      line("raw subscribe V8 heap", watchSizes, (w) => `watch@${w}`, "raw", "heap_per_task", 1, true)
    ]
  })
  chart("watch-subscribe.svg", "subscribe rate by tasks watched", {
    title: "subscribe rate, first watch (cold)",
    xLabel: "tasks watched",
    yLabel: "channels/s",
    logX: true,
    series: [
      line("ours (watch: SUBSCRIBE, MGET, PING)", watchSizes, (w) => `watch@${w}`, "ours", "subscribe_per_s"),
      line("raw node-redis plain subscribe", watchSizes, (w) => `watch@${w}`, "raw", "subscribe_per_s")
    ]
  })
  chart("watch-resync.svg", "resync time by tasks watched", {
    title: "resync after the subscriber connection is killed",
    xLabel: "tasks watched",
    yLabel: "seconds",
    logX: true,
    logY: true,
    series: [
      line("ours (re-SUBSCRIBE + MGET)", watchSizes, (w) => `watch@${w}`, "ours", "resync_s"),
      line("raw node-redis resubscribe", watchSizes, (w) => `watch@${w}`, "raw", "resync_s")
    ]
  })
  const xb = othersWatched.map((b) => Math.max(b, 1))
  const wk = (b: number) => `wakeup@${b === 1 ? 0 : b}`
  chart("wakeup.svg", "wake-up latency by other tasks watched", {
    title: "wake-up (store called → waiter woke)",
    xLabel: "other tasks watched (0 plotted at 1)",
    yLabel: "ms",
    logX: true,
    series: [
      line("ours p50", xb, wk, "ours", "p50"),
      line("raw p50", xb, wk, "raw", "p50"),
      line("ours p99", xb, wk, "ours", "p99", 1, true),
      line("raw p99", xb, wk, "raw", "p99", 1, true)
    ]
  })
  if (!smoke) {
    Fs.mkdirSync(outDir, { recursive: true })
    for (const [file, , doc] of charts) Fs.writeFileSync(Path.join(outDir, file), doc)
  }
  // The numbers behind the plots, so a reader can check a point.
  const table = (
    head: string,
    xs: ReadonlyArray<number>,
    id: (x: number) => string,
    cols: ReadonlyArray<[string, Impl, string]>
  ) =>
    [
      `| ${head} | ${cols.map((c) => c[0]).join(" | ")} |`,
      `|---|${cols.map(() => "---|").join("")}`,
      ...xs.map(
        (x) =>
          `| ${short(x)} | ${cols.map(([, impl, key]) => cell(field(res.get(id(x))?.[impl] ?? [], key))).join(" | ")} |`
      )
    ].join("\n")
  return [
    `![store](curves/store.svg) ![get](curves/get.svg)`,
    "",
    table("in flight", inflight, (k) => `store@${k}`, [
      ["ours store/s", "ours", "ops"],
      ["raw script store/s", "raw", "ops_script"]
    ]),
    "",
    table("in flight", inflight, (k) => `get@${k}`, [
      ["ours get/s", "ours", "ops"],
      ["raw GET/s", "raw", "ops"]
    ]),
    "",
    `![getAll](curves/getall.svg)`,
    "",
    table("ids", idCounts, (m) => `getall@${m}`, [
      ["ours getAll ms", "ours", "ms"],
      ["raw MGET ms", "raw", "ms"]
    ]),
    "",
    `![memory](curves/watch-memory.svg) ![subscribe](curves/watch-subscribe.svg) ![resync](curves/watch-resync.svg)`,
    "",
    table("watched", watchSizes, (w) => `watch@${w}`, [
      ["ours RSS B/task", "ours", "rss_per_task"],
      ["ours heap B/task", "ours", "heap_per_task"],
      ["ours subscribe/s", "ours", "subscribe_per_s"],
      ["ours resync s", "ours", "resync_s"],
      ["raw RSS B/task", "raw", "rss_per_task"],
      ["raw heap B/task", "raw", "heap_per_task"],
      ["raw subscribe/s", "raw", "subscribe_per_s"],
      ["raw resync s", "raw", "resync_s"]
    ]),
    "",
    `![wake-up](curves/wakeup.svg)`,
    "",
    table("others watched", othersWatched, (b) => `wakeup@${b}`, [
      ["ours p50 ms", "ours", "p50"],
      ["ours p99 ms", "ours", "p99"],
      ["raw p50 ms", "raw", "p50"],
      ["raw p99 ms", "raw", "p99"]
    ])
  ].join("\n")
}

/** Replace what lies between `<!-- name:begin -->` and `<!-- name:end -->` in RESULTS.md. */
const writeSection = (name: string, body: string) => {
  const file = Path.join(here, "RESULTS.md")
  const md = Fs.readFileSync(file, "utf8")
  const begin = `<!-- ${name}:begin -->`
  const end = `<!-- ${name}:end -->`
  const i = md.indexOf(begin)
  const j = md.indexOf(end)
  if (i < 0 || j < i) throw new Error(`RESULTS.md has no ${begin} … ${end}`)
  Fs.writeFileSync(file, md.slice(0, i + begin.length) + "\n" + body + "\n" + md.slice(j))
}

const main = async () => {
  execFileSync(Path.join(root, "node_modules", ".bin", "tsc"), ["-b", "tsconfig.build.json"], {
    cwd: root,
    stdio: "inherit"
  })
  const server = await startRedis({ pinCpu: pin ? "0" : undefined })
  const flush = () => execFileSync("redis-cli", ["-p", String(server.port), "FLUSHALL"])
  const started = Date.now()
  const load = Os.loadavg()[0]!.toFixed(1)
  const all: Record<string, unknown> = {}
  try {
    const stamp = `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${reps} reps, load average ${load} at the start`
    if (doTargets) {
      const res = runJobs(targetJobs, server.url, flush)
      Object.assign(all, Object.fromEntries(res))
      const table = targetsTable(res)
      console.log(table)
      if (!smoke && only === undefined)
        writeSection("targets", `Run of \`npm run bench:targets\` (${stamp}); median (min–max) over reps.\n\n${table}`)
    }
    if (doCurves) {
      const res = runJobs(curveJobs, server.url, flush)
      Object.assign(all, Object.fromEntries(res))
      const section = curvesSection(res)
      console.log(section)
      if (!smoke && only === undefined)
        writeSection(
          "curves",
          `Run of \`npm run bench:curves\` (${stamp}; the 1,000,000 point one rep); median (min–max) over reps.\n\n${section}`
        )
    }
    if (!smoke) {
      Fs.mkdirSync(outDir, { recursive: true })
      const file = Path.join(outDir, "data.json")
      const prev = Fs.existsSync(file) ? (JSON.parse(Fs.readFileSync(file, "utf8")) as Record<string, unknown>) : {}
      Fs.writeFileSync(file, JSON.stringify({ ...prev, ...all }, null, 1) + "\n")
    }
  } finally {
    server.stop()
  }
  process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
}

await main()
