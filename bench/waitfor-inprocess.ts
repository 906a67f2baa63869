/**
 * `waitFor` on a finished task against raw node-redis in ONE process, call by call alternating, on
 * one redis-server (the targets table runs ours and raw in separate processes):
 *   raw, bare            — `await client.get(key)` + `JSON.parse` in a plain async loop,
 *   raw in Effect        — the same inside `Effect.promise`, yielded from an `Effect.gen` loop,
 *   get                  — `backend.get`, from the same `Effect.gen` loop,
 *   waitFor              — `backend.waitFor(id)`, no timeout (one GET on the caller's fiber),
 *   waitFor, timeout     — `backend.waitFor(id, { timeout: "10 seconds" })` (the read bounded by the
 *                          wait's deadline: `readFirst`),
 *   waitFor, runPromise  — `waitFor(id)` run from the async loop with `Runtime.runPromise`, as a
 *                          Promise-based caller does, beside `raw in Effect` run the same way.
 * p50 in µs and the ratio to `raw, bare`: what the library adds over bare node-redis, and what any
 * Effect around the same GET adds.
 *
 * Usage: npm run build && TSX_TSCONFIG_PATH=tsconfig.base.json npx tsx bench/waitfor-inprocess.ts [--n 20000]
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Runtime } from "effect"
import { createClient } from "redis"
import { ResultBackend } from "@effect-celery/core"
import { RedisBackend } from "@effect-celery/redis"
import { machineLine, runMain } from "./effects.js"
import { startRedis } from "./util.js"

const args = process.argv.slice(2)
const n = args.includes("--n") ? Number(args[args.indexOf("--n") + 1]) : 20000

const main = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(
    Effect.promise(() => startRedis()),
    (s) => Effect.sync(s.stop)
  )
  const ctx = yield* Layer.build(RedisBackend.layer({ host: "127.0.0.1", port: server.port }))
  const backend = Context.get(ctx, ResultBackend.ResultBackend)
  const raw = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ socket: { host: "127.0.0.1", port: server.port } })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit())
  )
  const ids = Array.from({ length: 1000 }, () => randomUUID())
  yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { x: i }), { concurrency: 100, discard: true })
  const read = async (id: string) => {
    const v = await raw.get(`celery-task-meta-${id}`)
    if (v !== null) JSON.parse(v)
  }

  const lat = new Map<string, Array<number>>(
    [
      "raw, bare",
      "raw in Effect",
      "get",
      "waitFor",
      "waitFor, timeout",
      "raw in Effect, runPromise",
      "waitFor, runPromise"
    ].map((k) => [k, []])
  )
  const rec = (k: string, t: number) => lat.get(k)!.push(performance.now() - t)
  const timed = <A, E>(k: string, effect: Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      const t = performance.now()
      return Effect.tap(effect, () => rec(k, t))
    })

  // The Effect-side calls from an Effect loop, then the async-side calls from an async loop, each
  // round alternating its calls; two halves of n rounds each, swapped in order, then merged.
  const effectRound = (id: string) =>
    Effect.all(
      [
        timed(
          "raw in Effect",
          Effect.promise(() => read(id))
        ),
        timed("get", backend.get(id)),
        timed("waitFor", backend.waitFor(id)),
        timed("waitFor, timeout", backend.waitFor(id, { timeout: "10 seconds" }))
      ],
      { discard: true }
    )
  const run = Runtime.runPromise(yield* Effect.runtime<never>())
  const asyncRounds = (count: number) =>
    Effect.promise(async () => {
      for (let i = 0; i < count; i++) {
        const id = ids[i % ids.length]!
        let t = performance.now()
        await read(id)
        rec("raw, bare", t)
        t = performance.now()
        await run(Effect.promise(() => read(id)))
        rec("raw in Effect, runPromise", t)
        t = performance.now()
        await run(backend.waitFor(id))
        rec("waitFor, runPromise", t)
      }
    })
  const half = Math.floor(n / 2)
  yield* Effect.forEach(ids.slice(0, 200), effectRound, { discard: true })
  for (const xs of lat.values()) xs.length = 0 // the warm-up
  yield* asyncRounds(half)
  for (let i = 0; i < n; i++) yield* effectRound(ids[i % ids.length]!)
  yield* asyncRounds(n - half)

  const q = (xs: ReadonlyArray<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!
  const base = q(lat.get("raw, bare")!, 0.5)
  const lines = [
    "| call | n | p50 µs | p90 µs | p50 ÷ raw, bare |",
    "|---|---|---|---|---|",
    ...Array.from(
      lat,
      ([k, xs]) =>
        `| ${k} | ${xs.length} | ${(q(xs, 0.5) * 1000).toFixed(1)} | ${(q(xs, 0.9) * 1000).toFixed(1)} | ×${(q(xs, 0.5) / base).toFixed(2)} |`
    )
  ]
  process.stdout.write(`${lines.join("\n")}\n\n${machineLine()}\n`)
})

void runMain(main).then(() => process.exit())
