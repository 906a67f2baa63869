/**
 * One benchmark run: starts its own redis-server on a free loopback port, then measures this library,
 * Python Celery 5.2.6's RedisBackend (system python3) and raw node-redis doing the same work,
 * interleaved, several reps; prints one table with medians (min–max) and ratios, and writes
 * bench/RESULTS.md. `--smoke` runs tiny sizes once (CI keeps the bench from rotting) and writes nothing.
 *
 * Server and clients are pinned to different CPUs with taskset when there are at least 2.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { startRedis } from "./util.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const smoke = args.includes("--smoke")
const reps = smoke ? 1 : Number(args[args.indexOf("--reps") + 1] ?? 3) || 3
const only = args.includes("--only") ? args[args.indexOf("--only") + 1]!.split(",") : undefined
const cpus = Os.cpus().length
const hasTaskset = spawnSync("taskset", ["--version"]).status === 0
const pin = !smoke && hasTaskset && cpus >= 2
const serverCpu = ["-c", "0"]
const clientCpu = ["-c", String(Math.min(1, cpus - 1))]

const startServer = () => startRedis({ pinCpu: pin ? serverCpu[1] : undefined })

type Impl = "ours" | "celery" | "raw"
const command = (impl: Impl, fig: string, url: string, n: number): [string, Array<string>] => {
  const node = [process.execPath, "--expose-gc", "--import", "tsx"]
  const base: [string, Array<string>] =
    impl === "celery"
      ? ["/usr/bin/python3", [Path.join(here, "celery_bench.py"), fig, url, String(n)]]
      : [node[0]!, [...node.slice(1), Path.join(here, `${impl}.ts`), fig, url, String(n)]]
  return pin ? ["taskset", [...clientCpu, base[0], ...base[1]]] : base
}

// Our side runs the built packages (dist/, what users import) rather than src/ through tsx's
// transform: tsx resolves `@effect-celery/*` by the package exports when given a tsconfig without paths.
const oursEnv = { ...process.env, TSX_TSCONFIG_PATH: Path.join(here, "..", "tsconfig.base.json") }

const runOne = (impl: Impl, fig: string, url: string, n: number): Record<string, number> => {
  const [cmd, argv] = command(impl, fig, url, n)
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 600_000, cwd: Path.join(here, ".."), env: oursEnv })
  const lines = (r.stdout ?? "").trim().split("\n")
  const last = lines[lines.length - 1] ?? ""
  if (r.status !== 0 || !last.startsWith("{")) {
    throw new Error(`${impl} ${fig} failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`)
  }
  return JSON.parse(last) as Record<string, number>
}

interface Figure {
  readonly id: string
  readonly title: string
  readonly n: Record<Impl, number | undefined>
  /** More figures an implementation runs in their own process per rep, merged into its record. */
  readonly extra?: Partial<Record<Impl, ReadonlyArray<string>>>
  /**
   * Which measured field to show, and whether higher is better. `oursKey`: the field of ours that
   * a row of a raw-only ceiling compares with (ours ÷ raw is then ours[oursKey] ÷ raw[key]).
   */
  readonly fields: ReadonlyArray<{
    readonly key: string
    readonly label: string
    readonly higherIsBetter: boolean
    readonly unit: string
    readonly oursKey?: string
  }>
  readonly target: string
}

const S = smoke
const figures: ReadonlyArray<Figure> = [
  {
    id: "store",
    title: "store results/s (ours/raw: 100 in flight; Celery: one process, sequential)",
    n: { ours: S ? 300 : 50_000, raw: S ? 300 : 50_000, celery: S ? 100 : 10_000 },
    extra: { raw: ["store_script"] },
    fields: [
      { key: "ops", label: "results/s", higherIsBetter: true, unit: "/s" },
      {
        key: "ops_script",
        oursKey: "ops",
        label: "results/s, raw running our store script (≤ 32 stores a call, as ours batches them)",
        higherIsBetter: true,
        unit: "/s"
      }
    ],
    target: "≥ 50k/s"
  },
  {
    id: "get",
    title: "get task meta/s (ours/raw: 100 concurrent callers)",
    n: { ours: S ? 300 : 100_000, raw: S ? 300 : 100_000, celery: S ? 100 : 10_000 },
    fields: [{ key: "ops", label: "reads/s", higherIsBetter: true, unit: "/s" }],
    target: "≥ 150k/s"
  },
  {
    id: "getmany",
    title: "get many of 1,000 ready ids",
    n: { ours: S ? 2 : 200, raw: S ? 2 : 200, celery: S ? 1 : 30 },
    fields: [
      {
        key: "ops",
        label: "calls/s: ours getAll; Celery get_many up to the 1,000th; raw MGET + JSON.parse",
        higherIsBetter: true,
        unit: "/s"
      },
      {
        key: "stream_ops",
        label: "calls/s: ours getMany drained (Celery, raw: as above)",
        higherIsBetter: true,
        unit: "/s"
      },
      { key: "drained_ms", label: "Celery list() wall ms", higherIsBetter: false, unit: " ms" }
    ],
    target: "≥ 250 calls/s, no trailing sleep"
  },
  {
    id: "wakeup",
    title: "wake-up, store called → waiter woke",
    n: { ours: S ? 5 : 500, raw: S ? 5 : 500, celery: S ? 5 : 500 },
    fields: [
      { key: "p50", label: "p50 ms", higherIsBetter: false, unit: " ms" },
      { key: "p99", label: "p99 ms", higherIsBetter: false, unit: " ms" }
    ],
    target: "p50 ≤ 1.2× raw"
  },
  {
    id: "fanin",
    title: "fan-in: watched tasks, results written by another process",
    n: { ours: S ? 300 : 10_000, raw: undefined, celery: S ? 300 : 10_000 },
    fields: [
      { key: "after_last_write_s", label: "s after last write", higherIsBetter: false, unit: " s" },
      { key: "total_s", label: "s in all", higherIsBetter: false, unit: " s" },
      {
        key: "subscribe_per_s",
        label: "subscribe channels/s, the process's first watch (cold)",
        higherIsBetter: true,
        unit: "/s"
      },
      {
        key: "subscribe_second_per_s",
        label: "subscribe channels/s, a second watch of as many new tasks after the fan-in (steady state)",
        higherIsBetter: true,
        unit: "/s"
      },
      { key: "rss_per_task", label: "RSS bytes per watched task (at this N)", higherIsBetter: false, unit: " B" },
      { key: "heap_per_task", label: "V8 heap bytes per watched task (at this N)", higherIsBetter: false, unit: " B" }
    ],
    target: "≤ 0.1 s after last write; ≥ 100k channels/s"
  },
  {
    id: "watch100k",
    title: "100,000 watched: memory, subscribe rate, resync after the subscriber is killed",
    n: { ours: S ? 1_000 : 100_000, raw: S ? 1_000 : 100_000, celery: undefined },
    extra: { raw: ["watch100k_sync"] },
    fields: [
      { key: "rss_per_task", label: "RSS bytes per watched task", higherIsBetter: false, unit: " B" },
      { key: "heap_per_task", label: "V8 heap bytes per watched task", higherIsBetter: false, unit: " B" },
      {
        key: "subscribe_per_s",
        label: "subscribe channels/s, a second 100k after the first is released (steady state)",
        higherIsBetter: true,
        unit: "/s"
      },
      {
        key: "subscribe_sync_per_s",
        oursKey: "subscribe_per_s",
        label:
          "subscribe channels/s, steady state, raw doing a lossless watch's wire work (MGET of each chunk after its SUBSCRIBE ack, then PING)",
        higherIsBetter: true,
        unit: "/s"
      },
      {
        key: "subscribe_first_per_s",
        label: "subscribe channels/s, the process's first watch (cold)",
        higherIsBetter: true,
        unit: "/s"
      },
      {
        key: "subscribe_sync_first_per_s",
        oursKey: "subscribe_first_per_s",
        label: "subscribe channels/s, first watch (cold), raw doing a lossless watch's wire work",
        higherIsBetter: true,
        unit: "/s"
      },
      { key: "resync_s", label: "resync s", higherIsBetter: false, unit: " s" }
    ],
    target: "≤ 400 B; ≥ 100k/s; ≤ 1 s"
  }
]

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (x: number | undefined) =>
  x === undefined || Number.isNaN(x)
    ? "–"
    : x !== 0 && Math.abs(x) < 0.1
      ? x.toPrecision(2)
      : Math.abs(x) >= 1000
        ? Math.round(x).toLocaleString("en-US")
        : Math.abs(x) >= 10
          ? x.toFixed(1)
          : x.toFixed(2)
const cell = (xs: ReadonlyArray<number> | undefined) =>
  xs === undefined || xs.length === 0
    ? "–"
    : xs.length === 1
      ? fmt(xs[0])
      : `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`

const main = async () => {
  // Our side imports the built packages: bring dist/ up to date first.
  execFileSync(Path.join(here, "..", "node_modules", ".bin", "tsc"), ["-b", "tsconfig.build.json"], {
    cwd: Path.join(here, ".."),
    stdio: "inherit"
  })
  const server = await startServer()
  const flush = () => execFileSync("redis-cli", ["-p", String(server.port), "FLUSHALL"])
  const results = new Map<string, Map<Impl, Array<Record<string, number>>>>()
  const impls: ReadonlyArray<Impl> = ["ours", "celery", "raw"]
  try {
    for (const fig of figures) {
      if (only && !only.includes(fig.id)) continue
      const byImpl = new Map<Impl, Array<Record<string, number>>>()
      results.set(fig.id, byImpl)
      for (let rep = 0; rep < reps; rep++) {
        // Interleave: rotate the order each rep so no implementation always runs first.
        const order = impls.map((_, i) => impls[(i + rep) % impls.length]!)
        for (const impl of order) {
          const n = fig.n[impl]
          if (n === undefined) continue
          flush()
          let r = runOne(impl, fig.id, server.url, n)
          for (const extra of fig.extra?.[impl] ?? []) {
            flush()
            r = { ...r, ...runOne(impl, extra, server.url, n) }
          }
          byImpl.set(impl, [...(byImpl.get(impl) ?? []), r])
          process.stderr.write(`${fig.id} rep ${rep + 1}/${reps} ${impl}: ${JSON.stringify(r)}\n`)
        }
      }
    }
  } finally {
    server.stop()
  }

  const rows: Array<string> = [
    "| figure | ours | Python Celery 5.2.6 | raw node-redis | ours ÷ Celery | ours ÷ raw | target |",
    "|---|---|---|---|---|---|---|"
  ]
  for (const fig of figures) {
    const byImpl = results.get(fig.id)
    if (!byImpl) continue
    for (const f of fig.fields) {
      const vals = (impl: Impl, key = f.key) =>
        byImpl
          .get(impl)
          ?.map((r) => r[key])
          .filter((x): x is number => typeof x === "number")
      const o = vals("ours", f.oursKey),
        c = f.oursKey === undefined ? vals("celery") : undefined,
        r = vals("raw")
      // Ratios pair each rep's figures, measured minutes apart at most: the machine's speed drifts
      // more than that between reps, and a ratio of medians would mix reps.
      const ratio = (a?: ReadonlyArray<number>, b?: ReadonlyArray<number>) => {
        if (!a?.length || !b?.length) return "–"
        const paired = a.slice(0, Math.min(a.length, b.length)).map((x, i) => x / b[i]!)
        const x = (v: number) => `${v.toFixed(2)}×`
        return paired.length === 1
          ? x(paired[0]!)
          : `${x(median(paired))} (${x(Math.min(...paired))}–${x(Math.max(...paired))})`
      }
      rows.push(
        `| ${fig.title} — ${f.label} | ${cell(o)} | ${cell(c)} | ${cell(r)} | ${ratio(o, c)} | ${ratio(o, r)} | ${f === fig.fields[0] ? fig.target : ""} |`
      )
    }
  }
  const table = rows.join("\n")
  console.log(table)
  const machine = `${Os.cpus()[0]?.model ?? "cpu"} × ${cpus}, ${(Os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${execFileSync("redis-server", ["--version"]).toString().trim().split(" ").slice(0, 3).join(" ")}`
  if (!smoke) {
    const md = `# Benchmark results\n\nLatest full run of \`npm run bench${reps === 3 ? "" : ` -- --reps ${reps}`}\` (${new Date().toISOString().slice(0, 10)}), ${reps} reps, median (min–max).\n\nMachine: ${machine}. ${pin ? "redis-server pinned to CPU 0, clients to CPU 1 (taskset)." : "Not pinned."}\nCelery figures: Celery 5.2.6 / kombu 5.2.4 / redis-py 4.3.4 on the system python3, same server, same run.\nRatios: ours ÷ the other in the same rep, median (min–max) over reps; for rates higher is better, for times and bytes lower is better.\n\n${table}\n`
    // The sections after the table (## headings: targets, curves, telemetry, design notes) are kept.
    const file = Path.join(here, "RESULTS.md")
    const prev = Fs.existsSync(file) ? Fs.readFileSync(file, "utf8") : ""
    const rest = prev.indexOf("\n## ")
    Fs.writeFileSync(file, rest < 0 ? md : `${md}${prev.slice(rest)}`)
  }
}

await main()
