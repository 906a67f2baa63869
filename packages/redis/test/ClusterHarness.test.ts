/**
 * The cluster harness itself: 3 masters + 3 replicas formed and healthy, a key served through
 * redirection, a master SIGKILLed and its replica promoted, every process gone with the scope.
 * One cluster for the whole file (six servers are heavy on a shared machine).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisCluster } from "../../../test-support/RedisCluster.js"

describe("cluster test harness", () => {
  it.scopedLive(
    "forms 3 masters + 3 replicas, fails a killed master over, and stops with the scope",
    () =>
      Effect.gen(function* () {
        const pids: Array<number> = []
        yield* Effect.gen(function* () {
          const cluster = yield* redisCluster()
          assert.strictEqual(cluster.nodes.length, 6)
          for (const node of cluster.nodes) pids.push(node.process.pid()!)

          const ranges = yield* cluster.slots
          const masters = new Set(ranges.map((r) => r.master))
          assert.strictEqual(masters.size, 3)
          assert.strictEqual(
            ranges.reduce((n, r) => n + r.to - r.from + 1, 0),
            16384
          )
          for (const r of ranges) assert.strictEqual(r.replicas.length, 1)
          assert.match(cluster.url, /^redis:\/\/127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){5}$/)

          // Every `{celery}:…` key hashes to `{celery}`'s slot; a write through -c follows MOVED.
          const slot = Number((yield* cluster.cli(cluster.nodes[0]!.port, ["CLUSTER", "KEYSLOT", "{celery}:x"])).trim())
          assert.strictEqual(
            (yield* cluster.cli(cluster.nodes[0]!.port, ["CLUSTER", "KEYSLOT", "{celery}:y"])).trim(),
            String(slot)
          )
          yield* cluster.cli(cluster.nodes[0]!.port, ["-c", "SET", "{celery}:x", "1"])
          const owner = yield* cluster.masterOf(slot)
          const replica = ranges.find((r) => r.from <= slot && slot <= r.to)!.replicas[0]!
          // The replica has the write once its offset catches up: WAIT on the master says so.
          assert.strictEqual((yield* cluster.cli(owner, ["WAIT", "1", "5000"])).trim(), "1")

          yield* cluster.kill(owner)
          assert.isFalse(cluster.node(owner).process.isRunning())
          yield* cluster.waitHealthy()
          assert.strictEqual(yield* cluster.masterOf(slot), replica)
          assert.strictEqual((yield* cluster.cli(replica, ["GET", "{celery}:x"])).trim(), "1")
        }).pipe(Effect.scoped)

        // Every node is gone with the scope.
        for (const pid of pids) {
          assert.throws(() => process.kill(pid, 0))
        }
      }),
    120_000
  )
})
