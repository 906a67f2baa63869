/**
 * Out-of-range durations from URLs and options: anything beyond what Node's timers take (2^31−1
 * ms) is clamped to it with a warning, instead of becoming a 1 ms timer (a PING every
 * millisecond, a connect that times out at once); a health_check_interval of 0 disables it.
 * `result_expires` goes to Redis as SETEX/EXPIRE seconds: what no EXPIRE can carry (negative,
 * NaN, beyond 2^53−1 s) is refused with ImproperlyConfigured when the backend is built.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ConfigError } from "effect"
import { Cause, Config, ConfigProvider, Context, Duration, Effect, Either, Exit, Layer, Logger, Option } from "effect"
import * as BackendOptions from "@effect-celery/core/BackendOptions"
import * as Keys from "@effect-celery/core/Keys"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend, RedisConfig } from "@effect-celery/redis"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"

describe("out-of-range durations", () => {
  it.effect(
    "health_check_interval, socket_timeout and socket_connect_timeout beyond 2^31−1 ms are clamped; 0 disables the ping",
    () =>
      Effect.gen(function* () {
        const huge = { healthCheckInterval: "100 days", socketTimeout: "1000 days", connectTimeout: "30 days" } as const
        const options = yield* RedisConfig.clientOptions({ host: "127.0.0.1", port: 1, ...huge })
        assert.strictEqual(options.pingInterval, RedisConfig.MAX_TIMER_MILLIS)
        assert.strictEqual(options.socket?.connectTimeout, RedisConfig.MAX_TIMER_MILLIS)
        assert.strictEqual(RedisConfig.socketTimeoutMillis(huge), RedisConfig.MAX_TIMER_MILLIS)
        const off = yield* RedisConfig.clientOptions({ host: "127.0.0.1", port: 1, healthCheckInterval: 0 })
        assert.isUndefined(off.pingInterval)
      })
  )

  it.scopedLive(
    "a URL with health_check_interval=99999999999: one warning, no 1 ms timer, the backend works and PINGs rarely",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const warnings: Array<string> = []
        const onWarning = (w: Error) => warnings.push(w.name)
        process.on("warning", onWarning)
        yield* Effect.addFinalizer(() => Effect.sync(() => process.off("warning", onWarning)))
        const logged: Array<string> = []
        const logger = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) => logged.push(String(message)))
        )
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
        assert.isTrue(
          logged.some((m) => m.includes("health_check_interval") && m.includes("clamped")),
          logged.join("\n")
        )
      }),
    30_000
  )

  it("result_expires as Celery's int(): whole seconds toward zero; 0, null and infinity store without expiry", () => {
    const of = (expires: Duration.DurationInput | null) => Either.getOrThrow(BackendOptions.expiresSeconds({ expires }))
    assert.strictEqual(of(Duration.days(1)), 86400)
    assert.strictEqual(of(1999), 1)
    assert.isUndefined(of(999))
    assert.isUndefined(of(0))
    assert.isUndefined(of(-999), "-0.999 s truncates to 0, as int(-0.999) in Python")
    assert.isUndefined(of(null))
    assert.isUndefined(of(Duration.infinity))
    assert.strictEqual(of(Duration.seconds(BackendOptions.MAX_EXPIRES_SECONDS)), BackendOptions.MAX_EXPIRES_SECONDS)
    assert.strictEqual(Either.getOrThrow(BackendOptions.expiresSeconds({})), 86400)
  })

  it("result_expires below −1 s, NaN or above 2^53−1 s: ImproperlyConfigured naming the value and the range", () => {
    const cases: ReadonlyArray<readonly [Duration.DurationInput, string]> = [
      [-1000, "-1000 is negative"],
      ["-5 seconds", '"-5 seconds" is negative'],
      [[-3, 0], "-3,0 is negative"],
      [-5_000_000_000n, "-5000000000 is negative"],
      [NaN, "NaN is not a number"],
      [Duration.seconds(2 ** 53), "is too large"]
    ]
    for (const [expires, text] of cases) {
      const result = BackendOptions.expiresSeconds({ expires })
      assert.isTrue(Either.isLeft(result), String(expires))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "ImproperlyConfigured")
        assert.include(result.left.message, `result_expires out of range: `)
        assert.include(result.left.message, text)
        assert.include(result.left.message, `0 to ${BackendOptions.MAX_EXPIRES_SECONDS} seconds`)
      }
    }
  })

  it.effect(
    "expiresConfig reads seconds, durations and None as Celery's setting; a negative one is a ConfigError",
    () =>
      Effect.gen(function* () {
        const read = (value: string) =>
          Effect.either(
            Effect.withConfigProvider(
              BackendOptions.expiresConfig("RESULT_EXPIRES"),
              ConfigProvider.fromMap(new Map([["RESULT_EXPIRES", value]]))
            )
          )
        const invalid = (e: ConfigError.ConfigError): string => (e._op === "InvalidData" ? e.message : e._op)
        const ok = (value: string) => Effect.map(read(value), (e) => Either.getOrThrow(e))
        assert.deepStrictEqual(yield* ok("3600"), Duration.seconds(3600))
        assert.deepStrictEqual(yield* ok("2.5"), Duration.seconds(2))
        assert.deepStrictEqual(yield* ok("1 day"), Duration.seconds(86400))
        assert.isNull(yield* ok("None"))
        assert.isNull(yield* ok("0"))
        const negative = yield* read("-60")
        assert.isTrue(Either.isLeft(negative))
        if (Either.isLeft(negative))
          assert.include(invalid(negative.left), "result_expires out of range: -60000 is negative")
        const garbage = yield* read("soon")
        assert.isTrue(Either.isLeft(garbage) && invalid(garbage.left).includes("expected seconds, a duration or None"))
        // Config.duration would have read "-60 seconds" as zero, i.e. no expiry.
        assert.deepStrictEqual(
          Either.getOrThrow(
            yield* Effect.either(
              Effect.withConfigProvider(Config.duration("X"), ConfigProvider.fromMap(new Map([["X", "-60 seconds"]])))
            )
          ),
          Duration.zero
        )
      })
  )

  it.scopedLive(
    "on redis-server: the largest result_expires is a valid SETEX and EXPIRE; a negative one fails the layer before any command",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const raw = yield* rawClient(server)
        const ctx = yield* Layer.build(
          RedisBackend.layer(
            { host: "127.0.0.1", port: server.port },
            {
              expires: Duration.seconds(BackendOptions.MAX_EXPIRES_SECONDS)
            }
          )
        )
        const backend = Context.get(ctx, ResultBackend)
        const taskId = `max-${crypto.randomUUID()}`
        const groupId = `g-${crypto.randomUUID()}`
        yield* backend.markAsDone(taskId, 1)
        yield* backend.setChordSize(groupId, 2)
        yield* backend.onChordPartReturn({ groupId, taskId, groupIndex: 0 }, "SUCCESS", 1)
        const keys = Keys.standard
        for (const key of [keys.task(taskId), keys.chordJoin(groupId), keys.chordSize(groupId)]) {
          const ttl = yield* Effect.promise(() => raw.ttl(key))
          assert.isAbove(ttl, BackendOptions.MAX_EXPIRES_SECONDS - 60, key)
        }
        const calls = (info: string) => Number(/cmdstat_(?:evalsha|setex|set):calls=(\d+)/.exec(info)?.[1] ?? 0)
        const before = calls(yield* Effect.promise(() => raw.info("commandstats")))
        const exit = yield* Effect.exit(
          Layer.build(RedisBackend.layer({ host: "127.0.0.1", port: server.port }, { expires: "-1 day" }))
        )
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = Option.getOrThrow(Cause.failureOption(exit.cause))
          assert.strictEqual(error._tag, "ImproperlyConfigured")
          assert.include(error.message, '"-1 day" is negative')
        }
        assert.strictEqual(calls(yield* Effect.promise(() => raw.info("commandstats"))), before, "nothing sent")
      }),
    30_000
  )
})
