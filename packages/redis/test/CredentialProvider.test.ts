/**
 * `credentialProvider` (Celery 5.6's `redis_backend_credential_provider`) on a real redis-server
 * with an ACL user whose password rotates: the provider is asked before every connection (command
 * and Pub/Sub, first connect and reconnects), a rotated token is picked up on the next connect,
 * stale credentials are `Auth`, a provider's own failure is a typed `ConnectionError`, and no
 * token appears in a log line (debug included) or in `uri`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, LogLevel, Redacted, Ref } from "effect"
import { ConnectionError } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend, RedisClient } from "@effect-celery/redis"
import { createClient } from "redis"
import { redisServer } from "../../../test-support/RedisServer.js"
import { capturingLogs, failureOf, uid } from "./Expect.js"

const TOKENS = ["iam-token-0001", "iam-token-0002", "iam-token-stale"]

describe("credentialProvider", () => {
  it.scopedLive(
    "asked before every connection; a rotated token is used on reconnect; stale is Auth; never logged",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer({ args: ["--requirepass", "adminpw"] })
        const admin = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const c = createClient({
              socket: { host: "127.0.0.1", port: server.port, reconnectStrategy: false },
              password: "adminpw"
            })
            c.on("error", () => {})
            await c.connect()
            return c
          }),
          (c) => Effect.promise(() => c.disconnect().catch(() => undefined))
        )
        const acl = (...args: Array<string>) => Effect.promise(() => admin.sendCommand(args))
        yield* acl("ACL", "SETUSER", "rotor", "on", `>${TOKENS[0]}`, "~*", "&*", "+@all")

        const token = yield* Ref.make(TOKENS[0]!)
        const asked = yield* Ref.make(0)
        const credentialProvider = Effect.gen(function* () {
          yield* Ref.update(asked, (n) => n + 1)
          return { username: "rotor", password: Redacted.make(yield* Ref.get(token)) }
        })

        const logs = yield* capturingLogs("never")
        const url = `redis://127.0.0.1:${server.port}/0`
        const services = yield* Layer.build(RedisBackend.layerUrl(url, { connection: { credentialProvider } })).pipe(
          Effect.provide(logs.layer),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
        const client = Context.get(services, RedisClient.RedisClient)
        const backend = Context.get(services, ResultBackend)
        const run = <A, E>(self: Effect.Effect<A, E>) =>
          self.pipe(Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.All))

        assert.strictEqual(yield* Ref.get(asked), 0, "lazy: nothing asked before the first call")
        assert.strictEqual(yield* run(client.command(["ACL", "WHOAMI"])), "rotor")
        assert.strictEqual(yield* Ref.get(asked), 1)
        // The Pub/Sub connection asks too.
        const id = uid("cred")
        const waiting = yield* Effect.fork(run(backend.waitFor(id, { timeout: "10 seconds" })))
        yield* Effect.promise(async () => {
          while ((await admin.pubSubNumSub(`celery-task-meta-${id}`))[`celery-task-meta-${id}`] !== 1) {
            await new Promise((resolve) => setImmediate(resolve))
          }
        })
        yield* run(backend.markAsDone(id, "ok"))
        assert.strictEqual((yield* Fiber.join(waiting)).result, "ok")
        assert.strictEqual(yield* Ref.get(asked), 2)

        // Rotation: the server takes only the new token, every connection of the user is dropped.
        yield* acl("ACL", "SETUSER", "rotor", "resetpass", `>${TOKENS[1]}`)
        yield* Ref.set(token, TOKENS[1]!)
        yield* acl("CLIENT", "KILL", "USER", "rotor")
        // The first command may still meet the dropped socket (Closed); the reconnect asks again.
        const whoami = yield* run(client.command(["ACL", "WHOAMI"])).pipe(
          Effect.retry({ times: 3, while: (e) => e._tag === "ConnectionError" && e.reason !== "Auth" })
        )
        assert.strictEqual(whoami, "rotor")
        assert.isAtLeast(yield* Ref.get(asked), 3)

        // A stale token: the next connect is refused with Auth, which is not retried.
        yield* Ref.set(token, TOKENS[2]!)
        yield* acl("CLIENT", "KILL", "USER", "rotor")
        const stale = yield* failureOf(
          run(client.command(["PING"])).pipe(
            Effect.retry({ times: 3, while: (e) => e._tag === "ConnectionError" && e.reason !== "Auth" })
          )
        )
        assert.instanceOf(stale, ConnectionError)
        assert.strictEqual(stale.reason, "Auth")

        assert.strictEqual(client.uri, url)
        assert.isAbove(logs.messages.length, 0, "debug lines were captured")
        for (const line of logs.messages) {
          for (const t of TOKENS) assert.notInclude(line, t)
        }
        assert.notInclude(String(stale), TOKENS[2]!)
      })
  )

  it.scopedLive("a provider that fails: ConnectionError(Connect) naming the server, its own ConnectionError kept", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const url = `redis://127.0.0.1:${server.port}/0`
      const failing = yield* failureOf(
        Layer.build(
          RedisClient.layerUrl(url, { failFast: true, credentialProvider: Effect.fail("token service down") })
        )
      )
      assert.instanceOf(failing, ConnectionError)
      assert.strictEqual(failing.reason, "Connect")
      assert.include(failing.message, `127.0.0.1:${server.port}`)
      assert.include(failing.message, "credential provider")

      const own = new ConnectionError({ reason: "Auth", message: "no token for this role" })
      const kept = yield* failureOf(
        Layer.build(RedisClient.layerUrl(url, { failFast: true, credentialProvider: Effect.fail(own) }))
      )
      assert.instanceOf(kept, ConnectionError)
      assert.strictEqual(kept.reason, "Auth")
      assert.strictEqual(kept.message, "no token for this role")
    })
  )
})
