import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeTlsFiles } from "../../../test-support/RedisServer.js"
import { pairs, sentinelTopology } from "../../../test-support/Sentinel.js"

describe("sentinel topology harness", () => {
  it.scopedLive("plain", () =>
    Effect.gen(function* () {
      const t0 = Date.now()
      const topo = yield* sentinelTopology()
      console.log("plain topology ready in", Date.now() - t0, "ms")
      const m = yield* topo.masterAddress
      assert.strictEqual(m.port, topo.nodes[0]!.port)
      const info = pairs(yield* topo.sentinelCommand(0, ["SENTINEL", "MASTER", topo.masterName]))
      assert.strictEqual(info["num-other-sentinels"], "2")
    }), 60_000)
  it.scopedLive("passwords + tls", () =>
    Effect.gen(function* () {
      const t0 = Date.now()
      const tls = yield* makeTlsFiles
      const topo = yield* sentinelTopology({ password: "datapw", sentinelPassword: "sentpw", tls })
      console.log("tls topology ready in", Date.now() - t0, "ms")
      const m = yield* topo.masterAddress
      assert.strictEqual(m.port, topo.nodes[0]!.port)
      const failed = yield* topo.nodeCommand(m.port, ["SET", "x", "1"]).pipe(Effect.as("ok"))
      assert.strictEqual(failed, "ok")
    }), 60_000)
})
