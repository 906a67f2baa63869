/**
 * `credentialProvider` beyond CredentialProvider.test.ts: the subscriber's connection re-asks after
 * a rotation and CLIENT KILL (and the command connection: one ask per connect, counted exactly), no
 * span carries a password; failures retried under the policy (or not, for the provider's own
 * Auth); a provider that hangs is bounded by the connect timeout, a defect is typed; Celery's
 * `?credential_provider=` URL form.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Logger, LogLevel, Redacted, Ref, Schedule } from "effect"
import { ConnectionError } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { SpanRecorder } from "@effect-celery/core/testing"
import { RedisBackend, RedisClient } from "@effect-celery/redis"
import type { CredentialProvider } from "@effect-celery/redis/RedisConfig"
import type { RawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { build, capturingLogs, failure, failureOf, uid } from "./Expect.js"

const ONE = "pw-one-SECRET"
const TWO = "pw-two-SECRET"

/** A provider giving the ACL user `app` whatever password `current` holds, counting its calls. */
const countingProvider = Effect.gen(function* () {
  const current = yield* Ref.make(ONE)
  const calls = yield* Ref.make(0)
  const provider: CredentialProvider = Effect.gen(function* () {
    yield* Ref.update(calls, (n) => n + 1)
    return { username: "app", password: Redacted.make(yield* Ref.get(current)) }
  })
  return { current, calls, provider }
})

/** A server whose default user has an admin password, and an admin connection to it. */
const aclServer = Effect.gen(function* () {
  const server = yield* redisServer({ args: ["--requirepass", "adminpw"] })
  const admin = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const { createClient } = await import("redis")
      const c: RawClient = createClient({
        socket: { host: server.host, port: server.port, reconnectStrategy: false },
        password: "adminpw"
      })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => (c.isOpen ? c.disconnect() : Promise.resolve()))
  )
  const run = (args: ReadonlyArray<string>) => Effect.promise(() => admin.sendCommand<unknown>([...args]))
  yield* run(["ACL", "SETUSER", "app", "on", `>${ONE}`, "~*", "&*", "+@all"])
  /** The server's connections of user `app`, as CLIENT LIST lines. */
  const appClients = Effect.map(run(["CLIENT", "LIST"]), (list) =>
    String(list)
      .split("\n")
      .filter((l) => / user=app /.test(l))
  )
  return { server, run, appClients }
})

/** Retry until `check` holds (a readiness condition, bounded). */
const until = <A>(check: Effect.Effect<A>, holds: (a: A) => boolean) =>
  Effect.flatMap(check, (a) => (holds(a) ? Effect.succeed(a) : Effect.fail(`not yet: ${JSON.stringify(a)}`))).pipe(
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDie
  )

const fastRetries = { maxRetries: 2, intervalStart: 0.01, intervalStep: 0, intervalMax: 0.01 }

describe("credentialProvider", () => {
  it.scopedLive(
    "asked per connect, command and subscriber connections; a rotated password is used after CLIENT KILL; never logged",
    () => {
      const rec = SpanRecorder.make()
      const logs = Effect.runSync(capturingLogs("never"))
      return Effect.gen(function* () {
        const { appClients, run, server } = yield* aclServer
        const { calls, current, provider } = yield* countingProvider
        const ctx = yield* Layer.build(
          RedisBackend.layer({
            host: "127.0.0.1",
            port: server.port,
            username: "ignored",
            password: Redacted.make("SECRET-configured"),
            credentialProvider: provider
          })
        )
        const backend = Context.get(ctx, ResultBackend)
        const client = Context.get(ctx, RedisClient.RedisClient)

        // The command connection: one ask, as user app (the configured username/password are not used).
        yield* backend.markAsDone(uid("cred"), 1)
        assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "app")
        assert.strictEqual(yield* Ref.get(calls), 1)

        // The subscriber's connection asks again.
        const id = uid("cred-wait")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: Duration.seconds(20) }))
        yield* until(appClients, (lines) => lines.some((l) => l.includes(" sub=1 ")))
        assert.strictEqual(yield* Ref.get(calls), 2)

        // Rotate on the server (the old password stops working), then kill every connection of app.
        yield* run(["ACL", "SETUSER", "app", "resetpass", `>${TWO}`])
        yield* Ref.set(current, TWO)
        assert.strictEqual(yield* run(["CLIENT", "KILL", "USER", "app"]), 2)

        // The next call reconnects with the new password, and so does the subscriber: the wait ends.
        yield* backend.markAsDone(id, "after rotation")
        const meta = yield* Fiber.join(waiting)
        assert.strictEqual(meta.status, "SUCCESS")
        assert.strictEqual(meta.result, "after rotation")
        assert.strictEqual(yield* Ref.get(calls), 4)
        assert.lengthOf(yield* until(appClients, (lines) => lines.length === 2), 2)

        // Everything logged on the way (debug included: the killed sockets, the retried store) was
        // seen, and none of it has a password.
        assert.isTrue(
          logs.messages.some((m) => m.includes("Socket closed unexpectedly")),
          logs.messages.join("\n")
        )
        // The configured username may show (Celery's as_uri() keeps it); no password may.
        const leaked = logs.messages.filter((m) => m.includes("SECRET"))
        assert.deepStrictEqual(leaked, [])
        assert.isAtLeast(rec.spans.length, 3)
        for (const span of rec.spans) {
          for (const [key, value] of span.attributes) assert.notInclude(String(value), "SECRET", `${span.name} ${key}`)
        }
      }).pipe(Effect.withTracer(rec.tracer), Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.All))
    }
  )

  it.scopedLive("a failing provider: ConnectionError(Connect) naming the server, retried under the policy", () =>
    Effect.gen(function* () {
      const { server } = yield* aclServer
      const calls = yield* Ref.make(0)
      const provider: CredentialProvider = Ref.update(calls, (n) => n + 1).pipe(
        Effect.zipRight(Effect.fail(new Error("metadata service unreachable")))
      )
      const client = yield* Layer.build(
        RedisClient.layer({ host: "127.0.0.1", port: server.port, credentialProvider: provider })
      ).pipe(Effect.map((ctx) => Context.get(ctx, RedisClient.RedisClient)))
      const error = yield* failureOf(client.command(["PING"]))
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Connect")
      assert.strictEqual(error.message, `redis://127.0.0.1:${server.port}/0: the credential provider failed`)

      // Under the backend's policy: asked again at each retry (1 + 2 retries).
      yield* Ref.set(calls, 0)
      const ctx = yield* Layer.build(
        RedisBackend.layer(
          { host: "127.0.0.1", port: server.port, credentialProvider: provider },
          { retryPolicy: fastRetries }
        )
      )
      const retried = yield* failureOf(
        Context.get(ctx, ResultBackend).markAsDone(uid("fail"), 1).pipe(Logger.withMinimumLogLevel(LogLevel.None))
      )
      assert.strictEqual(retried._tag, "RetryLimitExceeded")
      assert.strictEqual(yield* Ref.get(calls), 3)

      // A provider that knows its failure is permanent says so: Auth, not retried.
      yield* Ref.set(calls, 0)
      const permanent: CredentialProvider = Ref.update(calls, (n) => n + 1).pipe(
        Effect.zipRight(Effect.fail(new ConnectionError({ reason: "Auth", message: "no IAM role attached" })))
      )
      const ctx2 = yield* Layer.build(
        RedisBackend.layer(
          { host: "127.0.0.1", port: server.port, credentialProvider: permanent },
          { retryPolicy: fastRetries }
        )
      )
      const refused = yield* failureOf(Context.get(ctx2, ResultBackend).markAsDone(uid("perm"), 1))
      assert.instanceOf(refused, ConnectionError)
      assert.strictEqual(refused.reason, "Auth")
      assert.strictEqual(refused.message, "no IAM role attached")
      assert.strictEqual(yield* Ref.get(calls), 1)
    })
  )

  it.scopedLive(
    "a provider that never answers: Timeout within the connect timeout; a defect is a ConnectionError too",
    () =>
      Effect.gen(function* () {
        const { server } = yield* aclServer
        const hung = yield* Layer.build(
          RedisClient.layer({
            host: "127.0.0.1",
            port: server.port,
            connectTimeout: Duration.millis(300),
            credentialProvider: Effect.never
          })
        ).pipe(Effect.map((ctx) => Context.get(ctx, RedisClient.RedisClient)))
        const timedOut = yield* failureOf(hung.command(["PING"]).pipe(Effect.timeout(Duration.seconds(5))))
        assert.instanceOf(timedOut, ConnectionError)
        assert.strictEqual(timedOut.reason, "Timeout")
        assert.include(timedOut.message, "the credential provider did not answer within 300ms")

        const dying = yield* Layer.build(
          RedisClient.layer({
            host: "127.0.0.1",
            port: server.port,
            credentialProvider: Effect.dieMessage("bug in the provider")
          })
        ).pipe(Effect.map((ctx) => Context.get(ctx, RedisClient.RedisClient)))
        const died = failure(yield* Effect.exit(dying.command(["PING"])))
        assert.instanceOf(died, ConnectionError)
        assert.strictEqual(died.reason, "Connect")
        assert.include(died.message, "the credential provider failed")
      })
  )

  it.scopedLive(
    "layerUrl: the provider wins over the URL's credentials; Celery's ?credential_provider= needs the option",
    () =>
      Effect.gen(function* () {
        const { server } = yield* aclServer
        const { calls, provider } = yield* countingProvider
        const url = `redis://someone:wrong@127.0.0.1:${server.port}/0?credential_provider=mymodule.Provider`
        const client = yield* build(RedisClient.layerUrl(url, { credentialProvider: provider }))
        assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "app")
        assert.strictEqual(yield* Ref.get(calls), 1)
        const refused = yield* failureOf(build(RedisClient.layerUrl(url)))
        assert.strictEqual(refused._tag, "ImproperlyConfigured")
        assert.include(refused.message, "credentialProvider")
      })
  )
})
