/**
 * The node-redis Pub/Sub adapter on a real redis-server: one listener entry for a chunk of
 * channels, the listener-less UNSUBSCRIBE, loss reported, and the listeners gone after `detach`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connector } from "@effect-celery/redis/RedisConnection"
import * as PubSub from "../src/internal/pubsub.js"
import { rawClient } from "../../../test-support/RawRedis.js"
import { redisServer } from "../../../test-support/RedisServer.js"

const numsub = (admin: { sendCommand: (args: Array<string>) => Promise<unknown> }, channels: Array<string>) =>
  Effect.map(
    Effect.promise(() => admin.sendCommand(["PUBSUB", "NUMSUB", ...channels])),
    (reply) => (reply as Array<string | number>).filter((_, i) => i % 2 === 1).map(Number)
  )

describe("PubSub adapter", () => {
  it.scopedLive("subscribes a chunk, delivers by channel, unsubscribes, reports a loss once detached no more", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const admin = yield* rawClient(server)
      const client = yield* connector({ socket: { host: server.host, port: server.port } })
      const got: Array<string> = []
      let losses = 0
      const errorListeners = client.listenerCount("error")
      const ps = PubSub.attach(
        client,
        (message, channel) => void got.push(`${channel}=${message}`),
        () => void losses++
      )
      assert.strictEqual(client.listenerCount("error"), errorListeners + 1)
      assert.strictEqual(client.listenerCount("end"), 1)

      yield* Effect.promise(() => ps.subscribe(["a", "b", "c"]))
      assert.isTrue(ps.subscribed().has("b"))
      assert.strictEqual(ps.subscribed().size, 3)
      assert.deepStrictEqual(yield* numsub(admin, ["a", "b", "c"]), [1, 1, 1])
      // Known channels are not sent again.
      yield* Effect.promise(() => ps.subscribe(["a", "d"]))
      assert.strictEqual(ps.subscribed().size, 4)

      yield* Effect.promise(() => admin.publish("b", "1"))
      yield* Effect.promise(() => admin.publish("d", "2"))
      yield* Effect.promise(() => ps.unsubscribe(["a", "b"]))
      assert.deepStrictEqual(got, ["b=1", "d=2"])
      assert.isFalse(ps.subscribed().has("a"))
      assert.deepStrictEqual(yield* numsub(admin, ["a", "b", "c", "d"]), [0, 0, 1, 1])
      // In subscriber mode the server answers PING with a lower-case "pong".
      assert.strictEqual((yield* Effect.promise(() => ps.ping())).toLowerCase(), "pong")
      assert.isTrue(ps.isReady())

      ps.detach()
      assert.strictEqual(client.listenerCount("error"), errorListeners)
      assert.strictEqual(client.listenerCount("end"), 0)
      yield* Effect.promise(() => admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
      while (ps.isReady()) yield* Effect.sleep("5 millis")
      assert.strictEqual(losses, 0, "detached: the loss is not reported")
    })
  )

  it.scopedLive("a killed connection is reported as a loss", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const admin = yield* rawClient(server)
      const client = yield* connector({ socket: { host: server.host, port: server.port } })
      let losses = 0
      const ps = PubSub.attach(
        client,
        () => {},
        () => void losses++
      )
      yield* Effect.promise(() => ps.subscribe(["a"]))
      yield* Effect.promise(() => admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))
      while (losses === 0) yield* Effect.sleep("5 millis")
      assert.isFalse(ps.isReady())
      ps.destroy()
      ps.destroy()
    })
  )
})
