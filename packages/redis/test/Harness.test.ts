import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createClient } from "redis"
import { redisServer } from "../../../test-support/RedisServer.js"

describe("test harness", () => {
  it.scoped("starts a private redis-server and kills it with the scope", () =>
    Effect.gen(function* () {
      const server = yield* redisServer({ unixSocket: true })
      const pong = yield* Effect.promise(async () => {
        const c = createClient({ socket: { path: server.socketPath! } })
        c.on("error", () => {})
        await c.connect()
        const r = await c.ping()
        await c.quit()
        return r
      })
      assert.strictEqual(pong, "PONG")
      assert.isTrue(server.process.isRunning())
    })
  )
})
