/**
 * `RedisBackend.layerConfig` in the `@effect/sql-pg` style: every setting a `Config`, under names
 * the application chooses, from any `ConfigProvider`; the environment names stay the default.
 */
import { assert, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Exit, Layer } from "effect"
import { createClient } from "redis"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as TaskState from "@effect-celery/core/TaskState"
import { RedisBackend } from "@effect-celery/redis"
import { redisServer } from "../../../test-support/RedisServer.js"

const raw = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ socket: { host: "127.0.0.1", port } })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.disconnect())
  )

const storeOne = (taskId: string) =>
  Effect.flatMap(ResultBackend, (backend) => backend.store(taskId, TaskState.SUCCESS, { ok: true }))

it.scopedLive(
  "layerConfig takes a Config per setting: URL, expires, resultExtended and keys under the application's names",
  () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* raw(server.port)
      const provider = ConfigProvider.fromMap(
        new Map([
          ["APP_RESULTS_URL", `redis://127.0.0.1:${server.port}/3`],
          ["APP_RESULTS_TTL", "90 seconds"],
          ["APP_RESULTS_PREFIX", "myapp"]
        ])
      )
      const layer = RedisBackend.layerConfig({
        url: Config.redacted("APP_RESULTS_URL"),
        expires: Config.duration("APP_RESULTS_TTL"),
        keys: { globalKeyprefix: Config.string("APP_RESULTS_PREFIX") }
      })
      yield* storeOne("cfg-1").pipe(Effect.provide(layer), Effect.withConfigProvider(provider))
      yield* Effect.promise(() => client.select(3))
      const keys = yield* Effect.promise(() => client.keys("*cfg-1"))
      assert.deepStrictEqual(keys, ["myapp_celery-task-meta-cfg-1"])
      const ttl = yield* Effect.promise(() => client.ttl("myapp_celery-task-meta-cfg-1"))
      assert.isTrue(ttl > 80 && ttl <= 90, `ttl ${ttl}`)
    })
)

it.scopedLive("layerConfig() reads CELERY_RESULT_BACKEND by default, and a missing setting is a ConfigError", () =>
  Effect.gen(function* () {
    const server = yield* redisServer()
    const client = yield* raw(server.port)
    const env = ConfigProvider.fromMap(new Map([["CELERY_RESULT_BACKEND", `redis://127.0.0.1:${server.port}/0`]]))
    yield* storeOne("cfg-2").pipe(Effect.provide(RedisBackend.layerConfig()), Effect.withConfigProvider(env))
    const ttl = yield* Effect.promise(() => client.ttl("celery-task-meta-cfg-2"))
    assert.isTrue(ttl > 86000, `default result_expires of one day, got ${ttl}`)

    const missing = yield* Effect.exit(
      Layer.build(RedisBackend.layerConfig({ url: Config.redacted("NOPE") })).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      )
    )
    assert.isTrue(Exit.isFailure(missing))
    if (Exit.isFailure(missing)) assert.include(String(missing.cause), "NOPE")
  })
)
