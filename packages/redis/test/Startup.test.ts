/**
 * Startup under outage, on real redis-server processes: the layers are built without a server,
 * the first calls connect under the retry policy (Celery's log lines), a policy of no retries fails
 * them promptly, and what no wait can cure (a wrong password, an untrusted CA) fails at once.
 * `failFast` keeps the old behaviour: the layer itself fails when the server cannot be reached.
 *
 * "Down at start" is a server started (for its port) then SIGKILLed before the layer is built;
 * it is restarted once the retry lines show the calls waiting, after about 2 s of outage.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { ConnectionError, RetryLimitExceeded } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend } from "@effect-celery/redis"
import { makeTlsFiles, redisServer } from "../../../test-support/RedisServer.js"
import { capturingLogs, failureOf, uid } from "./Expect.js"

/** The backend of `RedisBackend.layerUrl`, built in the current scope. */
const backendAt = (url: string, options: RedisBackend.Options = {}) =>
  Effect.map(Layer.build(RedisBackend.layerUrl(url, options)), (ctx) => Context.get(ctx, ResultBackend))

describe("startup under outage", () => {
  it.scopedLive(
    "server down at start for ~2 s: a store and a waitFor issued at start succeed once it is up, with Celery's retry lines",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        yield* server.process.kill
        const logs = yield* capturingLogs("Connection to Redis lost: Retry (3/20)")
        const started = Date.now()
        // The layer builds with no server (lazy connect).
        const backend = yield* backendAt(server.url).pipe(Effect.provide(logs.layer))
        const built = Date.now() - started
        const id = uid("startup")
        const waiting = yield* Effect.fork(
          backend.waitFor(id, { timeout: "30 seconds" }).pipe(Effect.provide(logs.layer))
        )
        const storing = yield* Effect.fork(backend.markAsDone(id, { up: true }).pipe(Effect.provide(logs.layer)))
        yield* Deferred.await(logs.seen)
        const downFor = Date.now() - started
        yield* server.process.restart
        yield* Fiber.join(storing)
        const stored = Date.now() - started
        const meta = yield* Fiber.join(waiting)
        const waited = Date.now() - started
        assert.deepStrictEqual(meta.result, { up: true })
        assert.isBelow(built, 1500, "the layer is built without waiting for the server")
        // kombu logs a retry before its sleep: Retry (3/20) comes after the 1 s sleeps of retries 1 and 2.
        assert.isAtLeast(downFor, 1800, "two retries of 1 s were waited")
        // Celery's exact lines, from the store (kombu's ensure) and from the subscriber's reconnect.
        const retries = logs.messages.filter((m) => m.startsWith("Connection to Redis lost"))
        assert.includeMembers(retries, [
          "Connection to Redis lost: Retry (0/20) now.",
          "Connection to Redis lost: Retry (1/20) in 1.00 second.",
          "Connection to Redis lost: Retry (2/20) in 1.00 second."
        ])
        console.log(
          `startup: layer built in ${built} ms; down ${downFor} ms; store done at ${stored} ms, waitFor at ${waited} ms`
        )
      }),
    60_000
  )

  it.scopedLive(
    "SIGKILL and restart during a startup retry: the calls still succeed",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        yield* server.process.kill
        const logs = yield* capturingLogs("Connection to Redis lost: Retry (1/")
        const backend = yield* backendAt(server.url, {
          retryPolicy: { maxRetries: 200, intervalStart: 0.05, intervalStep: 0, intervalMax: 0.05 }
        }).pipe(Effect.provide(logs.layer))
        const id = uid("killed")
        const waiting = yield* Effect.fork(
          backend.waitFor(id, { timeout: "30 seconds" }).pipe(Effect.provide(logs.layer))
        )
        const storing = yield* Effect.fork(backend.markAsDone(id, 7).pipe(Effect.provide(logs.layer)))
        yield* Deferred.await(logs.seen)
        // Up, then killed again while the calls are still retrying, then up for good.
        yield* server.process.restart
        yield* server.process.kill
        yield* server.process.restart
        yield* Fiber.join(storing)
        assert.strictEqual((yield* Fiber.join(waiting)).result, 7)
        assert.strictEqual((yield* backend.get(id)).result, 7)
      }),
    60_000
  )

  it.scopedLive(
    "maxRetries: 0 — the first store and waitFor fail promptly with RetryLimitExceeded",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        yield* server.process.kill
        const options: BackendOptions = { retryPolicy: { maxRetries: 0 } }
        const logs = yield* capturingLogs("never")
        const backend = yield* backendAt(server.url, options).pipe(Effect.provide(logs.layer))
        const started = Date.now()
        const stored = yield* failureOf(backend.markAsDone(uid("none"), 1))
        const storeMillis = Date.now() - started
        assert.instanceOf(stored, RetryLimitExceeded)
        assert.strictEqual(stored.retries, 0)
        assert.strictEqual(stored.lastCause.reason, "Connect")
        const waitStart = Date.now()
        const waited = yield* failureOf(
          backend.waitFor(uid("none"), { timeout: "30 seconds" }).pipe(Effect.provide(logs.layer))
        )
        const waitMillis = Date.now() - waitStart
        assert.instanceOf(waited, RetryLimitExceeded)
        // Bounds far below one retry sleep of the default policy, loose enough for a busy machine.
        assert.isBelow(storeMillis, 2500)
        assert.isBelow(waitMillis, 2500)
        // Back up: the same backend works without being rebuilt.
        yield* server.process.restart
        const id = uid("after")
        yield* backend.markAsDone(id, 2)
        assert.strictEqual((yield* backend.waitFor(id, { timeout: "10 seconds" })).result, 2)
        console.log(`maxRetries 0: store failed in ${storeMillis} ms, waitFor in ${waitMillis} ms`)
      }),
    30_000
  )

  it.scopedLive(
    "a wrong password fails the first store and waitFor at once with ConnectionError Auth (not retried)",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer({ args: ["--requirepass", "right"] })
        const logs = yield* capturingLogs("never")
        const backend = yield* backendAt(`redis://:wrong@127.0.0.1:${server.port}/0`).pipe(Effect.provide(logs.layer))
        const started = Date.now()
        const stored = yield* failureOf(backend.markAsDone(uid("auth"), 1).pipe(Effect.provide(logs.layer)))
        assert.instanceOf(stored, ConnectionError)
        assert.strictEqual(stored.reason, "Auth")
        const waited = yield* failureOf(
          backend.waitFor(uid("auth"), { timeout: "30 seconds" }).pipe(Effect.provide(logs.layer))
        )
        assert.instanceOf(waited, ConnectionError)
        assert.strictEqual(waited.reason, "Auth")
        const elapsed = Date.now() - started
        assert.isBelow(elapsed, 5000, "no retry budget spent (the default budget is about 19 s)")
        assert.isFalse(
          logs.messages.some((m) => m.startsWith("Connection to Redis lost")),
          "nothing retried"
        )
        assert.notInclude(stored.message, "wrong", "the password is never shown")
        console.log(`wrong password: store and waitFor failed in ${elapsed} ms`)
      }),
    30_000
  )

  it.scopedLive(
    "an untrusted TLS CA fails the first store at once with ConnectionError Tls (not retried)",
    () =>
      Effect.gen(function* () {
        const files = yield* makeTlsFiles
        const server = yield* redisServer({ tls: { cert: files.serverCert, key: files.serverKey, ca: files.ca } })
        const logs = yield* capturingLogs("never")
        const url = `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(files.otherCa)}`
        const backend = yield* backendAt(url).pipe(Effect.provide(logs.layer))
        const started = Date.now()
        const stored = yield* failureOf(backend.markAsDone(uid("tls"), 1).pipe(Effect.provide(logs.layer)))
        const elapsed = Date.now() - started
        assert.instanceOf(stored, ConnectionError)
        assert.strictEqual(stored.reason, "Tls")
        assert.isBelow(elapsed, 5000, "no retry budget spent (the default budget is about 19 s)")
        assert.isFalse(
          logs.messages.some((m) => m.startsWith("Connection to Redis lost")),
          "nothing retried"
        )
      }),
    60_000
  )

  it.scopedLive("failFast: the layer itself fails with ConnectionError when the server is down", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      yield* server.process.kill
      const started = Date.now()
      const error = yield* failureOf(backendAt(server.url, { connection: { failFast: true } }))
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Connect")
      assert.isBelow(Date.now() - started, 3000, "not the retry budget")
    })
  )
})
