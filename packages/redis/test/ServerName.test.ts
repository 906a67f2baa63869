/**
 * One format names the server in every message and log line: Celery's `as_uri()`
 * (`RedisConfig.serverUri`), the password masked as `**`. Checked against Celery's own `as_uri()`
 * for the same URLs, and on real servers: the messages of a refused connect, a rejected password,
 * a retry budget that gives up, a closed client and a Sentinel that finds no master, and the log
 * lines around them, all name the server so and none contains the password.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Logger, LogLevel, Redacted } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend, RedisClient, RedisConfig, RedisUrl } from "@effect-celery/redis"
import * as RedisConnection from "@effect-celery/redis/RedisConnection"
import { Sentinel } from "@effect-celery/sentinel"
import { freePort, redisServer } from "../../../test-support/RedisServer.js"

const SECRET = "s3cret-Pw"

describe("naming the server", () => {
  it.effect("serverUri, displayUri and targetOfOptions give Celery's as_uri() for the same server", () =>
    Effect.gen(function* () {
      // Celery 5.2.6's as_uri() of these URLs (`app.backend.as_uri()`).
      const celery: ReadonlyArray<readonly [string, string]> = [
        ["redis://:secret@127.0.0.1:6379/0", "redis://:**@127.0.0.1:6379/0"],
        ["redis://user:secret@127.0.0.1:6379/2", "redis://user:**@127.0.0.1:6379/2"],
        ["rediss://:pw@h:6380/0?ssl_cert_reqs=required", "rediss://:**@h:6380/0"],
        ["redis+socket:///run/redis.sock", "socket:///run/redis.sock"]
      ]
      for (const [url, asUri] of celery) {
        const parsed = Either.getOrThrow(RedisUrl.parse(url))
        assert.strictEqual(parsed.uri, asUri, url)
        const config = yield* RedisUrl.toConfig(url)
        assert.strictEqual(RedisConfig.displayUri({ ...config, uri: undefined }), asUri, url)
        assert.strictEqual(RedisConfig.targetOf(config), asUri, url)
        const options = yield* RedisConfig.clientOptions({ ...config, tls: undefined })
        const scheme = url.startsWith("rediss") ? "rediss" : undefined
        assert.strictEqual(RedisConnection.targetOfOptions(options, scheme), asUri, url)
      }
      assert.strictEqual(
        RedisConfig.serverUri({ scheme: "sentinel", host: "h1", port: 26379, password: true, db: 0 }),
        "sentinel://:**@h1:26379/0"
      )
      assert.strictEqual(
        RedisConfig.serverUri({ scheme: "redis", host: "::1", port: 6379, password: false, db: 1 }),
        "redis://[::1]:6379/1"
      )
    })
  )

  it.scopedLive(
    "every connection message names the server as as_uri(), and none holds the password",
    () =>
      Effect.gen(function* () {
        const logged: Array<string> = []
        const logger = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) =>
            logged.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
          )
        )
        const messages: Array<string> = []
        const failureOf = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
          Effect.map(Effect.flip(effect), (e) => {
            messages.push(e.message)
            const last = (e as { readonly lastCause?: { readonly message: string } }).lastCause
            if (last !== undefined) messages.push(last.message)
            return e
          })
        const client = (config: RedisConfig.RedisConfig) =>
          Effect.map(Layer.build(RedisClient.layer(config)), (ctx) => Context.get(ctx, RedisClient.RedisClient))
        const ping = (c: RedisClient.RedisClient) => c.command(["PING"])

        // A refused connect (no server on the port): the retry budget gives up, naming the server.
        const port = yield* freePort
        const refusedConfig = {
          host: "127.0.0.1",
          port,
          password: Redacted.make(SECRET),
          connectTimeout: "1 second"
        } as const
        const refused = yield* client(refusedConfig)
        yield* failureOf(ping(refused))
        const backend = yield* Effect.map(
          Layer.build(
            RedisBackend.layer(refusedConfig, {
              retryPolicy: { maxRetries: 2, intervalStart: 0, intervalStep: 0.01, intervalMax: 0.01 }
            })
          ),
          (ctx) => Context.get(ctx, ResultBackend)
        )
        const gaveUp = yield* failureOf(
          backend.markAsDone("never-stored", 1).pipe(Effect.provide(logger), Logger.withMinimumLogLevel(LogLevel.All))
        )
        assert.strictEqual(gaveUp._tag, "RetryLimitExceeded")
        const refusedUri = `redis://:**@127.0.0.1:${port}/0`
        assert.include(messages.join("\n"), refusedUri, gaveUp.message)

        // A server with a password, given the wrong one: Auth, at once.
        const server = yield* redisServer({ args: ["--requirepass", SECRET] })
        const wrong = yield* client({
          host: "127.0.0.1",
          port: server.port,
          username: "default",
          password: Redacted.make(`${SECRET}-wrong`)
        })
        const auth = yield* failureOf(ping(wrong))
        assert.strictEqual((auth as { readonly reason?: string }).reason, "Auth")
        assert.include(auth.message, `redis://default:**@127.0.0.1:${server.port}/0`)

        // The right password; then the client's scope is closed: Shutdown names it the same way.
        const inner = yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* client({ host: "127.0.0.1", port: server.port, password: Redacted.make(SECRET) })
            yield* ping(c)
            return c
          })
        )
        const shutdown = yield* failureOf(ping(inner))
        assert.include(shutdown.message, `redis://:**@127.0.0.1:${server.port}/0`)

        // Sentinel: no sentinel up; with a password for the sentinels and one for the master.
        const sentinelPort = yield* freePort
        const sentinel = yield* Sentinel.make({
          sentinels: [{ host: "127.0.0.1", port: sentinelPort }],
          masterName: "mymaster",
          password: Redacted.make(SECRET),
          sentinelKwargs: { password: SECRET }
        })
        const notFound = yield* failureOf(sentinel.discover)
        assert.include(notFound.message, `sentinel://:**@127.0.0.1:${sentinelPort}/0`)
        assert.include(sentinel.uri, `sentinel://:**@127.0.0.1:${sentinelPort}/0`)

        for (const text of [...messages, ...logged, refused.uri, wrong.uri, sentinel.uri]) {
          assert.notInclude(text, SECRET, text)
        }
        // Each error names its server as as_uri() (a node's own "connect ECONNREFUSED host:port" may follow).
        for (const text of messages) assert.match(text, /(redis|sentinel):\/\/(\w*:\*\*@)?127\.0\.0\.1:\d+\/0/, text)
        assert.isTrue(
          logged.some((line) => line.includes("Retry")),
          logged.join("\n")
        )
        assert.isTrue(
          logged.some((line) => line.includes(refusedUri)),
          logged.join("\n")
        )
      }),
    60_000
  )
})
