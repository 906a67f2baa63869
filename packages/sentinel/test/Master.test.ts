/**
 * The connections to the master: what their `RedisClient.connect` span names, and (ACL topology)
 * the credentials they use, from the `sentinel://` URL as Celery ≥ 5.6.1 passes them, while
 * `sentinel_kwargs` still go to the sentinels alone, or from a credential provider asked for
 * each connection.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Ref } from "effect"
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
  layer(Layer.scoped(Topology, sentinelTopology()), { excludeTestServices: true, timeout: "60 seconds" })(
    "plain topology",
    (it) => {
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
    }
  )

  layer(Layer.scoped(Topology, sentinelTopology({ password: "data-pw", sentinelPassword: "sentinel-pw" })), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })("ACL topology (passwords on the data nodes and on the sentinels)", (it) => {
    it.scoped(
      "the sentinel:// URL's user and password authenticate to the master (Celery ≥ 5.6.1); sentinel_kwargs only to the sentinels",
      () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const master = yield* topo.masterAddress
          yield* topo.nodeCommand(master.port, ["ACL", "SETUSER", "celery-acl", "on", ">acl-pw", "~*", "&*", "+@all"])
          const withUser = (userinfo: string) => topo.url.replace("sentinel://", `sentinel://${userinfo}@`)
          const options = { masterName: topo.masterName, sentinelKwargs: { password: "sentinel-pw" } }

          const client = yield* clientOf(Sentinel.layerUrl(withUser("celery-acl:acl-pw"), options))
          assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "celery-acl")

          // A wrong password for the ACL user is refused by the master, not retried.
          const wrong = yield* Effect.flip(clientOf(Sentinel.layerUrl(withUser("celery-acl:nope"), options)))
          assert.strictEqual(wrong._tag, "ConnectionError")
          assert.strictEqual((wrong as { readonly reason?: unknown }).reason, "Auth")

          // Nor do the URL's credentials go to the sentinels: without sentinel_kwargs they get no AUTH
          // at all (NOAUTH, where the URL's would be WRONGPASS), as Celery passes {}.
          const noKwargs = yield* Effect.flip(
            clientOf(Sentinel.layerUrl(withUser("celery-acl:acl-pw"), { masterName: topo.masterName, failFast: true }))
          )
          assert.strictEqual((noKwargs as { readonly reason?: unknown }).reason, "MasterNotFound")
          assert.include(noKwargs.message, "NOAUTH")
          assert.notInclude(noKwargs.message, "WRONGPASS")

          // No credentials in the URL: the sentinels' password is not tried on the master, though the
          // master would take it (added to its default user here).
          yield* topo.nodeCommand(master.port, ["ACL", "SETUSER", "default", ">sentinel-pw"])
          const none = yield* Effect.flip(clientOf(Sentinel.layerUrl(topo.url, options)))
          assert.strictEqual((none as { readonly reason?: unknown }).reason, "Auth")
        })
    )

    it.scoped("a credential provider is asked for each master connection; its credentials replace the URL's", () =>
      Effect.gen(function* () {
        const topo = yield* Topology
        const master = yield* topo.masterAddress
        yield* topo.nodeCommand(master.port, ["ACL", "SETUSER", "rotating", "on", ">token-1", "~*", "&*", "+@all"])
        const token = yield* Ref.make("token-1")
        const asked = yield* Ref.make(0)
        const credentialProvider = Effect.gen(function* () {
          yield* Ref.update(asked, (n) => n + 1)
          return { username: "rotating", password: Redacted.make(yield* Ref.get(token)) }
        })
        // The URL's own credentials are wrong: the provider's win.
        const url = topo.url.replace("sentinel://", "sentinel://celery-acl:nope@")
        const client = yield* clientOf(
          Sentinel.layerUrl(url, {
            masterName: topo.masterName,
            sentinelKwargs: { password: "sentinel-pw" },
            credentialProvider
          })
        )
        assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "rotating")
        assert.strictEqual(yield* Ref.get(asked), 1)

        yield* topo.nodeCommand(master.port, ["ACL", "SETUSER", "rotating", "resetpass", ">token-2"])
        yield* Ref.set(token, "token-2")
        yield* topo.nodeCommand(master.port, ["CLIENT", "KILL", "USER", "rotating"])
        const whoami = yield* client
          .command(["ACL", "WHOAMI"])
          .pipe(Effect.retry({ times: 3, while: (e) => e._tag === "ConnectionError" && e.reason !== "Auth" }))
        assert.strictEqual(whoami, "rotating")
        assert.strictEqual(yield* Ref.get(asked), 2)
      })
    )
  })
})
