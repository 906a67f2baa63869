/**
 * Out-of-range durations from URLs and options: anything beyond what Node's timers take (2^31−1
 * ms) is clamped to it with a warning, instead of becoming a 1 ms timer (a PING every
 * millisecond, a connect that times out at once); a health_check_interval of 0 disables it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend, RedisConfig } from "@effect-celery/redis"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"

describe("out-of-range durations", () => {
  it.effect("health_check_interval, socket_timeout and socket_connect_timeout beyond 2^31−1 ms are clamped; 0 disables the ping", () =>
    Effect.gen(function* () {
      const huge = { healthCheckInterval: "100 days", socketTimeout: "1000 days", connectTimeout: "30 days" } as const
      const options = yield* RedisConfig.clientOptions({ host: "127.0.0.1", port: 1, ...huge })
      assert.strictEqual(options.pingInterval, RedisConfig.MAX_TIMER_MILLIS)
      assert.strictEqual(options.socket?.connectTimeout, RedisConfig.MAX_TIMER_MILLIS)
      assert.strictEqual(RedisConfig.socketTimeoutMillis(huge), RedisConfig.MAX_TIMER_MILLIS)
      const off = yield* RedisConfig.clientOptions({ host: "127.0.0.1", port: 1, healthCheckInterval: 0 })
      assert.isUndefined(off.pingInterval)
    }))

  it.scopedLive("a URL with health_check_interval=99999999999: one warning, no 1 ms timer, the backend works and PINGs rarely", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const warnings: Array<string> = []
      const onWarning = (w: Error) => warnings.push(w.name)
      process.on("warning", onWarning)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.off("warning", onWarning)))
      const logged: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logged.push(String(message))))
      const url = `${server.url}/0?health_check_interval=99999999999&socket_timeout=9999999999`
      const ctx = yield* Layer.build(RedisBackend.layerUrl(url)).pipe(Effect.provide(logger))
      const backend = Context.get(ctx, ResultBackend)
      yield* backend.markAsDone("clamped", 1)
      assert.strictEqual((yield* backend.get("clamped")).result, 1)
      const raw = yield* rawClient(server)
      const pings = (info: string) => Number(/cmdstat_ping:calls=(\d+)/.exec(info)?.[1] ?? 0)
      const before = pings(yield* Effect.promise(() => raw.info("commandstats")))
      yield* Effect.sleep("300 millis")
      const after = pings(yield* Effect.promise(() => raw.info("commandstats")))
      assert.isAtMost(after - before, 2, "no PING storm")
      assert.notInclude(warnings, "TimeoutOverflowWarning")
      assert.isTrue(logged.some((m) => m.includes("health_check_interval") && m.includes("clamped")), logged.join("\n"))
    }), 30_000)
})
