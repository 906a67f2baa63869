/**
 * The shared environment of the interoperability tests: one private redis-server, optionally one
 * real Celery worker on it (broker db 1, results db 0), one long-lived Python client, and a raw
 * node-redis connection for reading exact bytes and Pub/Sub counts. Built once per describe block.
 */
import * as Path from "node:path"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Context, Effect, Either, Fiber, Layer, Schedule, Stream } from "effect"
import * as Keys from "@effect-celery/core/Keys"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as RedisBackend from "@effect-celery/redis/RedisBackend"
import * as PyJson from "@effect-celery/core/PyJson"
import { createClient } from "redis"
import type { CeleryVersion, CeleryWorker, PythonClient } from "../../../../test-support/Celery.js"
import { celeryWorker, pythonClient } from "../../../../test-support/Celery.js"
import { HarnessError, redisServer } from "../../../../test-support/RedisServer.js"
import type { RedisServer } from "../../../../test-support/RedisServer.js"

export const PYTHON_DIR = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "python")
export const CLIENT_SCRIPT = Path.join(PYTHON_DIR, "client.py")

export type RawRedis = ReturnType<typeof createClient>

export interface InteropEnv {
  readonly server: RedisServer
  /** Results database URL (db 0), shared by the worker, the Python client and TypeScript. */
  readonly backendUrl: string
  readonly worker: CeleryWorker | undefined
  readonly python: PythonClient
  /** For byte-level reads and `PUBSUB NUMSUB`; never used to write what is under test. */
  readonly raw: RawRedis
}

export const InteropEnv = Context.GenericTag<InteropEnv>("effect-celery/test/InteropEnv")

export interface InteropEnvOptions {
  /** Start a worker with these settings; none when false. */
  readonly worker: false | { readonly resultExtended: boolean; readonly chordOrdered?: boolean }
  /** The Celery the worker and the Python client run; default "5.2.6". */
  readonly celery?: CeleryVersion
  /** `result_backend_transport_options.global_keyprefix` of the worker and the client (≥ 5.3). */
  readonly globalKeyprefix?: string
}

const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => {
        const client = createClient({ url })
        client.on("error", () => {}) // failures surface as rejected commands
        return client.connect()
      },
      catch: (cause) => new HarnessError({ message: `raw redis connect ${url}`, cause })
    }),
    (client) =>
      Effect.interruptible(Effect.promise(() => client.quit().catch(() => undefined))).pipe(
        Effect.timeout("2 seconds"),
        Effect.catchAll(() => Effect.sync(() => void client.disconnect().catch(() => undefined)))
      )
  )

export const make = (options: InteropEnvOptions) =>
  Effect.gen(function* () {
    const server = yield* redisServer()
    const backendUrl = `${server.url}/0`
    const app = {
      appDir: PYTHON_DIR,
      celeryVersion: options.celery ?? "5.2.6",
      brokerUrl: `${server.url}/1`,
      backendUrl,
      ...(options.globalKeyprefix === undefined
        ? {}
        : { env: { CELERY_TEST_GLOBAL_KEYPREFIX: options.globalKeyprefix } }),
      ...(options.worker === false
        ? {}
        : { resultExtended: options.worker.resultExtended, chordOrdered: options.worker.chordOrdered ?? true })
    }
    // Worker and client start in parallel: both are a Python start-up.
    const [worker, python, raw] = yield* Effect.all(
      [
        options.worker === false ? Effect.succeed(undefined) : celeryWorker({ ...app, app: "interop_app" }),
        pythonClient({ ...app, script: CLIENT_SCRIPT }),
        rawClient(backendUrl)
      ],
      { concurrency: "unbounded" }
    )
    return { server, backendUrl, worker, python, raw } satisfies InteropEnv
  })

export const layer = (options: InteropEnvOptions): Layer.Layer<InteropEnv, HarnessError> =>
  Layer.scoped(InteropEnv, make(options))

/** A fresh id per test: tests share the server and run concurrently. */
export const uid = (label: string): string => `${label}-${randomUUID()}`

/**
 * Wait until `channel` has at least `count` subscribers on the server: the readiness signal of a
 * SUBSCRIBE made by someone else (our watcher, Python's consumer).
 */
export const awaitSubscribers = (raw: RawRedis, channel: string, count = 1) =>
  Effect.tryPromise({
    try: () => raw.pubSubNumSub(channel),
    catch: (cause) => new HarnessError({ message: "PUBSUB NUMSUB", cause })
  }).pipe(
    Effect.flatMap((counts) =>
      (counts[channel] ?? 0) >= count
        ? Effect.void
        : Effect.fail(new HarnessError({ message: `${channel}: fewer than ${count} subscribers` }))
    ),
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("10 seconds")))
  )

/** The raw bytes stored at a key (null when missing). */
export const rawGet = (raw: RawRedis, key: string) =>
  Effect.tryPromise({
    try: () => raw.get(key),
    catch: (cause) => new HarnessError({ message: `GET ${key}`, cause })
  })

/**
 * Start watching `ids` in the background and return once every channel is subscribed on the
 * server (under `keys`, default unprefixed), so that nothing stored afterwards can be missed. The returned effect collects the
 * stream (every item must decode) and fails instead of hanging when it does not end in time.
 */
export const startWatch = (
  ids: ReadonlyArray<string>,
  options?: { readonly timeoutMillis?: number; readonly keys?: Keys.KeyLayout }
) =>
  Effect.gen(function* () {
    const env = yield* InteropEnv
    const consumer = yield* ResultConsumer
    const fiber = yield* consumer.watch(ids).pipe(Stream.runCollect, Effect.forkScoped)
    for (const id of ids) yield* awaitSubscribers(env.raw, (options?.keys ?? Keys.standard).task(id))
    return Fiber.join(fiber).pipe(
      Effect.timeoutFail({
        duration: options?.timeoutMillis ?? 20_000,
        onTimeout: () => new HarnessError({ message: `watch ${ids.join(", ")} did not end` })
      }),
      Effect.flatMap((items) =>
        Effect.forEach(items, (item) =>
          Either.isRight(item)
            ? Effect.succeed(item.right)
            : Effect.fail(new HarnessError({ message: "undecodable meta", cause: item.left }))
        )
      )
    )
  })

/** Date formats: Celery 5.2.6 writes naive UTC `isoformat()`; ≥ 5.4 appends `+00:00`. */
export const NAIVE_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$/
export const OFFSET_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/

/** The date style a Celery version writes, and the pattern its dates match. */
export const dateStyleOf = (version: CeleryVersion): "naive" | "offset" => (version === "5.2.6" ? "naive" : "offset")
export const datePatternOf = (version: CeleryVersion): RegExp => (version === "5.2.6" ? NAIVE_DATE : OFFSET_DATE)

/** The TypeScript backend and consumer over the environment's results database. */
export const tsLayer = (options: RedisBackend.Options = {}) =>
  Layer.unwrapEffect(Effect.map(InteropEnv, (env) => RedisBackend.layerUrl(env.backendUrl, options)))

/** Environment plus the TypeScript services, built once for a describe block. */
export const fullLayer = (env: InteropEnvOptions, options: RedisBackend.Options = {}) =>
  tsLayer(options).pipe(Layer.provideMerge(layer(env)))

/** What `interop_app.rich_value()` returns, as the TypeScript codec decodes it. */
export const RICH = {
  nested: { list: [1, 2.5, 1, -0, 1e-7, 1e22, 0.1], empty: {}, none: null },
  big: 1180591620717411303424n,
  neg_big: -36893488147419103232n,
  unicode: 'caf\u00e9 \u2603 \u{1F600} \u2028 "q" \\ /',
  bools: [true, false],
  tuple: [1, "two"],
  inf: [Infinity, -Infinity]
}

/** The TypeScript twin of `interop_app.rich_value()` (floats forced where Python has them). */
export const RICH_TS = {
  nested: { list: [1, 2.5, PyJson.float(1), -0, 1e-7, PyJson.float(1e22), 0.1], empty: {}, none: null },
  big: 2n ** 70n,
  neg_big: -(2n ** 65n),
  unicode: 'caf\u00e9 \u2603 \u{1F600} \u2028 "q" \\ /',
  bools: [true, false],
  tuple: [1, "two"],
  inf: [Infinity, -Infinity]
}
