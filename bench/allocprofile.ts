/**
 * Where a store's heap bytes go: V8's allocation sampler (`HeapProfiler.startSampling`, objects
 * collected by either GC included) over `n` stores, 100 in flight, after 20·n untimed ones.
 * Prints bytes per store by function (self) and by file, largest first.
 *
 *   TSX_TSCONFIG_PATH=tsconfig.base.json node --import tsx bench/allocprofile.ts <redis_url> [n] [top]
 *
 * The sampled total is an estimate (one sample per `interval` bytes on average); `storealloc` in
 * bench/ours.ts is the figure the targets table quotes.
 */
import { randomUUID } from "node:crypto"
import { Session } from "node:inspector/promises"
import type { Layer } from "effect"
import { Effect } from "effect"
import { ResultBackend } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"
import { callers } from "./effects.js"

const [url, nText, topText] = process.argv.slice(2) as [string, string | undefined, string | undefined]
const n = Number(nText ?? 20_000)
const top = Number(topText ?? 25)
const interval = 512

interface Node {
  readonly callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<Node>
}

const program = Effect.gen(function* () {
  const backend = yield* ResultBackend.ResultBackend
  const batch = (size: number) => {
    const ids = Array.from({ length: size }, () => randomUUID())
    return callers(100, size, (i) => backend.markAsDone(ids[i]!, { x: i }))
  }
  yield* batch(20 * Math.min(n, 5000))
  const session = new Session()
  session.connect()
  yield* Effect.promise(() =>
    session.post("HeapProfiler.startSampling", {
      samplingInterval: interval,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
  )
  yield* batch(n)
  const { profile } = (yield* Effect.promise(() => session.post("HeapProfiler.stopSampling"))) as {
    profile: { head: Node }
  }
  session.disconnect()
  return profile.head
})

const head = await Effect.runPromise(
  program.pipe(Effect.provide(RedisBackend.layerUrl(url) as Layer.Layer<ResultBackend.ResultBackend, unknown>))
)

const byFn = new Map<string, number>()
const byFile = new Map<string, number>()
let total = 0
const walk = (node: Node) => {
  const f = node.callFrame
  const file = f.url.replace(/^.*\/node_modules\//, "").replace(/^.*\/packages\//, "") || "(native)"
  const fn = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`
  byFn.set(fn, (byFn.get(fn) ?? 0) + node.selfSize)
  byFile.set(file, (byFile.get(file) ?? 0) + node.selfSize)
  total += node.selfSize
  for (const c of node.children) walk(c)
}
walk(head)
const show = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${(v / n).toFixed(0).padStart(6)} B ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n")
console.log(`sampled bytes per store: ${(total / n).toFixed(0)} (n=${n})\n\nby function (self):\n${show(byFn)}`)
console.log(`\nby file:\n${show(byFile)}`)
process.exit(0)
