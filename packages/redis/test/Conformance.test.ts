/**
 * Core's conformance suite over Redis: the backend and the Pub/Sub consumer on a real
 * redis-server, over plain TCP, a unix socket and TLS. One server per transport serves every block
 * of its suite; the hooks talk to it through an independent raw node-redis connection.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import * as Fs from "node:fs"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { createClient } from "redis"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { Conformance } from "@effect-celery/core/testing"
import * as Keys from "@effect-celery/core/Keys"
import { RedisClient } from "@effect-celery/redis"
import type * as RedisConfig from "@effect-celery/redis/RedisConfig"
import * as RedisResultBackend from "@effect-celery/redis/RedisResultBackend"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import { makeTlsFiles, redisServer } from "../../../test-support/RedisServer.js"

type RawOptions = NonNullable<Parameters<typeof createClient>[0]>

/** What a transport gives the suite: how the code under test connects, and how the hooks do. */
interface Target {
  readonly config: RedisConfig.RedisConfig
  readonly raw: RawOptions
}

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 30_000)

/** Started by the first block that needs it, stopped after the file. */
const shared = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<A, E> =>
  Effect.runSync(Effect.cached(Scope.extend(acquire, scope)))

const tcp = shared(
  Effect.map(redisServer(), (server): Target => ({
    config: { host: "127.0.0.1", port: server.port },
    raw: { socket: { host: "127.0.0.1", port: server.port } }
  }))
)

const unix = shared(
  Effect.map(redisServer({ unixSocket: true }), (server): Target => ({
    config: { path: server.socketPath! },
    raw: { socket: { path: server.socketPath! } }
  }))
)

const tls = shared(
  Effect.gen(function* () {
    const files = yield* makeTlsFiles
    const server = yield* redisServer({ tls: { cert: files.serverCert, key: files.serverKey, ca: files.ca } })
    return {
      config: { host: "127.0.0.1", port: server.port, tls: { certReqs: "required", caFile: files.ca } },
      raw: { socket: { host: "127.0.0.1", port: server.port, tls: true, ca: Fs.readFileSync(files.ca, "utf8") } }
    } satisfies Target
  })
)

// Started before the tests, which run concurrently and would wait for them inside their per-step
// limits (the TLS one makes its certificates with openssl first).
beforeAll(() => Effect.runPromise(Effect.all([tcp, unix, tls], { concurrency: "unbounded", discard: true })), 60_000)

const rawClient = (options: RawOptions) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient(options)
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.disconnect().catch(() => undefined))
  )

const hooks = (target: Target, options: BackendOptions) =>
  Layer.scoped(
    Conformance.Hooks,
    Effect.gen(function* () {
      const raw = yield* rawClient(target.raw)
      const keys = Keys.make(options.keys ?? {})
      return {
        keys,
        writeRaw: (key, value) => Effect.promise(() => raw.set(key, value)),
        readRaw: (key) => Effect.promise(() => raw.get(key)).pipe(Effect.map(Option.fromNullable)),
        ttl: (key) =>
          Effect.promise(() => raw.ttl(key)).pipe(Effect.map((t) => (t >= 0 ? Option.some(t) : Option.none()))),
        elapse: (duration) => Effect.sleep(duration),
        subscriberCount: (taskId) =>
          Effect.promise(() => raw.pubSubNumSub(keys.task(taskId))).pipe(Effect.map((r) => r[keys.task(taskId)] ?? 0))
      } satisfies Conformance.Hooks
    })
  )

const makeLayer =
  (target: Effect.Effect<Target, unknown>): Conformance.MakeLayer =>
  (options) =>
    Layer.unwrapEffect(
      Effect.map(target, (t) =>
        RedisResultBackend.layer(options).pipe(
          Layer.provideMerge(RedisResultConsumer.layer(options)),
          Layer.merge(hooks(t, options)),
          Layer.provide(RedisClient.layer(t.config))
        )
      )
    )

Conformance.suite("RedisResultBackend over TCP", makeLayer(tcp), { live: true })
Conformance.suite("RedisResultBackend over a unix socket", makeLayer(unix), { live: true })
Conformance.suite("RedisResultBackend over TLS", makeLayer(tls), { live: true })
