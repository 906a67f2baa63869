/**
 * The cost of Telemetry: store, get and wake-up through `RedisBackend.layer` with
 *   off      — `tracing: "off", metrics: false` (the services unwrapped),
 *   metrics  — `tracing: "off", metrics: true` (metrics only),
 *   noop     — the default (`tracing: "on"`, metrics off) with Effect's default tracer, no exporter,
 *   otel     — the default with a real OpenTelemetry SDK tracer (@effect/opentelemetry,
 *              BatchSpanProcessor into an in-memory exporter, reset between runs).
 * The modes run interleaved (rotated order) over one redis-server on a free loopback port, `--reps`
 * times (default 3); prints one markdown table: median (min–max) and the ratio to `off`.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/tracing.ts [--reps 3] [--n 20000]
 */
import { randomUUID } from "node:crypto"
import * as Os from "node:os"
import { Context, Effect, Layer } from "effect"
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { ResultBackend } from "@effect-celery/core"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { RedisBackend } from "@effect-celery/redis"
import { callers, runMain, wakeUp } from "./effects.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const flag = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const reps = flag("--reps", 3)
const n = flag("--n", 20000)
const wakeups = flag("--wakeups", 300)

type Mode = "off" | "metrics" | "noop" | "otel"
const modes: ReadonlyArray<Mode> = ["off", "metrics", "noop", "otel"]
const optionsOf = (mode: Mode): BackendOptions =>
  mode === "off" ? { tracing: "off", metrics: false } : mode === "metrics" ? { tracing: "off", metrics: true } : {}

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] })
const otelLayer = OtelTracer.layer.pipe(
  Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider)),
  Layer.provide(OtelResource.layer({ serviceName: "bench" }))
)

const measure = (port: number, mode: Mode) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* Layer.build(RedisBackend.layer({ host: "127.0.0.1", port }, optionsOf(mode)))
      const backend = Context.get(ctx, ResultBackend.ResultBackend)
      const ids = Array.from({ length: n }, () => randomUUID())
      // Warm-up (JIT, connection).
      yield* callers(100, 2000, (i) => backend.markAsDone(`warm-${i}`, i))
      const t0 = performance.now()
      yield* callers(100, n, (i) => backend.markAsDone(ids[i]!, { i }))
      const storeOps = n / ((performance.now() - t0) / 1000)
      const t1 = performance.now()
      yield* callers(100, n, (i) => backend.get(ids[i]!))
      const getOps = n / ((performance.now() - t1) / 1000)
      const lat: Array<number> = []
      for (let i = 0; i < wakeups; i++) {
        lat.push((yield* wakeUp(backend, i)).millis)
      }
      lat.sort((a, b) => a - b)
      return { store: storeOps, get: getOps, wake: lat[Math.floor(lat.length / 2)]! }
    })
  )

const main = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(
    Effect.promise(() => startRedis()),
    (s) => Effect.sync(s.stop)
  )
  const results: Record<Mode, Array<{ store: number; get: number; wake: number }>> = {
    off: [],
    metrics: [],
    noop: [],
    otel: []
  }
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(k + r) % modes.length]!
      const run = measure(server.port, mode)
      const res = yield* mode === "otel" ? Effect.provide(run, otelLayer) : run
      yield* Effect.promise(() => provider.forceFlush())
      exporter.reset()
      results[mode].push(res)
      process.stderr.write(`rep ${r + 1} ${mode}: ${JSON.stringify(res)}\n`)
    }
  }
  const med = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(3))
  const cell = (mode: Mode, key: "store" | "get" | "wake") => {
    const xs = results[mode].map((x) => x[key])
    const ratio = med(xs) / med(results.off.map((x) => x[key]))
    return `${fmt(med(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}) ×${ratio.toFixed(2)}`
  }
  const lines = [
    `| mode | store ops/s | get ops/s | wake-up p50 ms |`,
    `|---|---|---|---|`,
    ...modes.map((m) => `| ${m} | ${cell(m, "store")} | ${cell(m, "get")} | ${cell(m, "wake")} |`)
  ]
  process.stdout.write(
    `${lines.join("\n")}\n\n${reps} reps, n=${n}, ${wakeups} wake-ups, ${Os.cpus().length} CPUs, node ${process.version}\n`
  )
})

void runMain(main).then(() => provider.shutdown())
