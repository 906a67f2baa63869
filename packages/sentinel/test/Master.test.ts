/**
 * The connections to the master: what their `RedisClient.connect` span names, and (ACL topology)
 * the credentials they use, from the `sentinel://` URL as Celery ≥ 5.6.1 passes them, while
 * `sentinel_kwargs` still go to the sentinels alone.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { SpanRecorder } from "@effect-celery/core/testing"
import type { RedisClient } from "@effect-celery/redis"
import { Sentinel } from "@effect-celery/sentinel"
import type { SentinelTopology } from "../../../test-support/Sentinel.js"
import { sentinelTopology } from "../../../test-support/Sentinel.js"

const Topology = Context.GenericTag<SentinelTopology>("test/SentinelTopology")

/** The `RedisClient` of a Sentinel layer, built in the current scope, after a first PING. */
const clientOf = <E>(built: Layer.Layer<RedisClient.RedisClient | Sentinel.Sentinel, E>) =>
  Layer.build(built).pipe(
    Effect.map((ctx) => ctx.unsafeMap.get("@effect-celery/redis/RedisClient") as RedisClient.RedisClient),
    Effect.tap((client) => client.command(["PING"]))
  )

describe("Sentinel master connections", () => {
  layer(Layer.scoped(Topology, sentinelTopology()), { excludeTestServices: true, timeout: "60 seconds" })("plain topology", (it) => {
    it.scoped("the RedisClient.connect span names the master found, not the sentinels", () => {
      const rec = SpanRecorder.make()
      return Effect.gen(function* () {
        const topo = yield* Topology
        yield* clientOf(Sentinel.layerUrl(topo.url, { masterName: topo.masterName }))
        const [span] = rec.named("RedisClient.connect")
        assert.isDefined(span)
        assert.strictEqual(span.attributes.get("server.address"), "127.0.0.1")
        assert.strictEqual(span.attributes.get("server.port"), topo.nodes[0]!.port)
        assert.strictEqual(span.attributes.get("db.namespace"), "0")
        // Discovery is its own span under it.
        assert.lengthOf(rec.named("Sentinel.discover"), 1)
      }).pipe(Effect.withTracer(rec.tracer))
    })
  })
})
