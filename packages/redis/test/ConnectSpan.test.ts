/**
 * The `RedisClient.connect` span names the server as OpenTelemetry does: `server.address` the host
 * (a unix socket: its path) and `server.port` the port (none for a socket), on a failed connect
 * too; the operation spans of a socket backend likewise.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { SpanRecorder } from "@effect-celery/core/testing"
import { RedisBackend, RedisClient } from "@effect-celery/redis"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { freePort, redisServer } from "../../../test-support/RedisServer.js"
import { build, failureOf, uid } from "./Expect.js"

const attributesOf = (rec: SpanRecorder.SpanRecorder, name: string) => {
  const spans = rec.named(name)
  assert.isAtLeast(spans.length, 1, `no ${name} span`)
  return Object.fromEntries(spans[0]!.attributes)
}

describe("RedisClient.connect span", () => {
  it.scopedLive("TCP: server.address is the host, server.port the port", () => {
    const rec = SpanRecorder.make()
    return Effect.gen(function* () {
      const server = yield* redisServer()
      yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, db: 2 }))
      const attributes = attributesOf(rec, "RedisClient.connect")
      assert.deepStrictEqual(attributes, {
        "db.system.name": "redis",
        "db.namespace": "2",
        "server.address": "127.0.0.1",
        "server.port": server.port
      })
    }).pipe(Effect.withTracer(rec.tracer))
  })

  it.scopedLive("a failed connect names its server too", () => {
    const rec = SpanRecorder.make()
    return Effect.gen(function* () {
      const port = yield* freePort
      const error = yield* failureOf(build(RedisClient.layer({ host: "127.0.0.1", port })))
      assert.strictEqual(error._tag, "ConnectionError")
      const attributes = attributesOf(rec, "RedisClient.connect")
      assert.strictEqual(attributes["server.address"], "127.0.0.1")
      assert.strictEqual(attributes["server.port"], port)
    }).pipe(Effect.withTracer(rec.tracer))
  })

  it.scopedLive(
    "unix socket: server.address is the socket's path, no server.port (connect and operation spans)",
    () => {
      const rec = SpanRecorder.make()
      return Effect.gen(function* () {
        const server = yield* redisServer({ unixSocket: true })
        const path = server.socketPath!
        yield* build(RedisClient.layer({ path }))
        const connect = attributesOf(rec, "RedisClient.connect")
        assert.strictEqual(connect["server.address"], path)
        assert.notProperty(connect, "server.port")

        // The URL form, through the backend: its store span names the socket the same way.
        const ctx = yield* Layer.build(RedisBackend.layerUrl(`redis+socket://${path}`))
        const backend = ctx.unsafeMap.get(ResultBackend.key) as ResultBackend
        yield* backend.store(uid("span"), "STARTED", null)
        const store = attributesOf(rec, Telemetry.SpanName.store)
        assert.strictEqual(store["server.address"], path)
        assert.notProperty(store, "server.port")
      }).pipe(Effect.withTracer(rec.tracer))
    }
  )
})
