/**
 * Server states that clear up are retried like a lost connection, on real redis-server processes:
 * a server restarted with a dataset to load (it answers LOADING meanwhile), a demoted master
 * answering READONLY (REPLICAOF), and further error prefixes given as
 * `additionalConnectionErrors`. After a give-up the next call starts over.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { CommandError, ConnectionError, RetryLimitExceeded } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as RetryPolicy from "@effect-celery/core/RetryPolicy"
import { RedisBackend, RedisClient } from "@effect-celery/redis"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { capturingLogs, failure, failureOf, uid } from "./Expect.js"

const servicesAt = (url: string, options: RedisBackend.Options = {}) =>
  Effect.map(Layer.build(RedisBackend.layerUrl(url, options)), (ctx) => ({
    backend: Context.get(ctx, ResultBackend),
    client: Context.get(ctx, RedisClient.RedisClient)
  }))

describe("retryable server states", () => {
  it.scopedLive(
    "a server loading its dataset answers LOADING: a store and a waitFor issued meanwhile succeed once it is loaded",
    () =>
      Effect.gen(function* () {
        // 10,000 keys and a 150 µs delay per key loaded (a debug setting Redis' own tests use):
        // a few seconds of LOADING without hundreds of MB on a shared machine.
        const server = yield* redisServer({
          args: [
            "--enable-debug-command",
            "yes",
            "--key-load-delay",
            "150",
            "--loading-process-events-interval-bytes",
            "1024"
          ]
        })
        const raw = yield* rawClient(server)
        yield* Effect.promise(() => raw.sendCommand(["DEBUG", "POPULATE", "10000", "filler", "64"]))
        yield* Effect.promise(() => raw.sendCommand(["SAVE"]))
        const { backend, client } = yield* servicesAt(server.url)
        const before = uid("before")
        yield* backend.markAsDone(before, "saved")
        yield* Effect.promise(() => raw.sendCommand(["SAVE"]))
        yield* server.process.kill
        const from = server.process.output().length
        const restarting = yield* Effect.fork(server.process.restart)
        yield* server.process.waitForLine("Loading RDB", { after: from })
        // Our client sees the state as a retryable ConnectionError("Busy"), not a command failure.
        let busy: ConnectionError | CommandError | undefined
        while (busy === undefined) {
          const exit = yield* Effect.exit(client.command(["PING"]))
          if (Exit.isFailure(exit)) {
            const error = failure(exit)
            if (error._tag === "CommandError" || error.reason === "Busy") busy = error
          } else {
            break
          }
        }
        assert.isDefined(busy, "the server answered LOADING")
        assert.instanceOf(busy, ConnectionError)
        assert.strictEqual(busy.reason, "Busy")
        assert.include(busy.message, "LOADING")
        const started = Date.now()
        const id = uid("loading")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: "30 seconds" }))
        yield* backend.markAsDone(id, { loaded: true })
        const stored = Date.now() - started
        assert.deepStrictEqual((yield* Fiber.join(waiting)).result, { loaded: true })
        yield* Fiber.join(restarting)
        assert.strictEqual((yield* backend.get(before)).result, "saved", "the dataset was loaded")
        console.log(`LOADING: store issued during the load done after ${stored} ms`)
      }),
    60_000
  )

  it.scopedLive(
    "a demoted master answers READONLY: stores are retried; a give-up fails typed and the next call starts over",
    () =>
      Effect.gen(function* () {
        const primary = yield* redisServer()
        const other = yield* redisServer()
        const raw = yield* rawClient(primary)
        const logs = yield* capturingLogs("Connection to Redis lost: Retry (1/")
        const policy: BackendOptions["retryPolicy"] = {
          maxRetries: 100,
          intervalStart: 0.05,
          intervalStep: 0,
          intervalMax: 0.05
        }
        const { backend } = yield* servicesAt(primary.url, { retryPolicy: policy })
        yield* backend.markAsDone(uid("ok"), 1)
        yield* Effect.promise(() => raw.sendCommand(["REPLICAOF", "127.0.0.1", String(other.port)]))
        // A policy that gives up at once: RetryLimitExceeded naming READONLY.
        const { backend: impatient } = yield* servicesAt(primary.url, { retryPolicy: { maxRetries: 0 } })
        const gaveUp = yield* failureOf(impatient.markAsDone(uid("impatient"), 1))
        assert.instanceOf(gaveUp, RetryLimitExceeded)
        assert.strictEqual(gaveUp.lastCause.reason, "ReadOnly")
        // A patient store waits through the retries; the master is promoted back meanwhile.
        const id = uid("readonly")
        const storing = yield* Effect.fork(backend.markAsDone(id, "after promotion").pipe(Effect.provide(logs.layer)))
        yield* Deferred.await(logs.seen)
        yield* Effect.promise(() => raw.sendCommand(["REPLICAOF", "NO", "ONE"]))
        yield* Fiber.join(storing)
        assert.strictEqual((yield* backend.get(id)).result, "after promotion")
        // The backend that gave up starts over on its next call.
        const next = uid("next")
        yield* impatient.markAsDone(next, 2)
        assert.strictEqual((yield* impatient.get(next)).result, 2)
      }),
    60_000
  )

  it.scopedLive(
    "additionalConnectionErrors: a reply with one of those prefixes is retried; without it, a CommandError",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const key = uid("attempts")
        // Fails with CUSTOMBUSY on its first two calls, then answers the attempt count.
        const script =
          "local n = redis.call('INCR', KEYS[1]) if n <= 2 then return redis.error_reply('CUSTOMBUSY not yet') end return n"
        const evalOnce = (client: RedisClient.RedisClient) => client.command(["EVAL", script, "1", key])
        const plain = yield* servicesAt(server.url)
        const refused = yield* failureOf(evalOnce(plain.client))
        assert.instanceOf(refused, CommandError)
        const { client } = yield* servicesAt(server.url, { connection: { additionalConnectionErrors: ["CUSTOMBUSY"] } })
        const busy = yield* failureOf(evalOnce(client))
        assert.instanceOf(busy, ConnectionError)
        assert.strictEqual(busy.reason, "Busy")
        const policy = { maxRetries: 5, intervalStart: 0, intervalStep: 0.01, intervalMax: 0.01 }
        const logs = yield* capturingLogs("never")
        const answered = yield* evalOnce(client).pipe(RetryPolicy.retry(policy), Effect.provide(logs.layer))
        assert.strictEqual(answered, 3)
      }),
    30_000
  )
})
