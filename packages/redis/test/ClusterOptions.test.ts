/**
 * `RedisClusterBackend` with the connection options a cluster used to refuse, on a real cluster (3
 * masters, no replicas, a node timeout long enough that a frozen master is never failed over):
 *
 * - `socketTimeout`: a master frozen with SIGSTOP (its sockets stay open, nothing is answered) fails
 *   a command on its slot with `ConnectionError("Timeout")`, as on one server; after SIGCONT the
 *   next command reconnects and succeeds.
 * - `credentialProvider`: an ACL user on every node; every node connection and the subscriber
 *   log in as it, the provider is asked again on reconnect (a rotated token is used), and a stale
 *   token fails the connect.
 * - The per-master subscriber: one named connection per master for a spread watch, all closed with
 *   the layer.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, Scope, Stream } from "effect"
import { ConnectionError } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import { RedisClient } from "@effect-celery/redis"
import * as RedisClusterBackend from "@effect-celery/redis/RedisClusterBackend"
import { slotOf } from "../src/internal/cluster.js"
import type { RedisCluster } from "../../../test-support/RedisCluster.js"
import { redisCluster } from "../../../test-support/RedisCluster.js"
import { failureOf, uid } from "./Expect.js"

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 60_000)
const cluster: Effect.Effect<RedisCluster, unknown> = Effect.runSync(
  Effect.cached(Scope.extend(redisCluster({ replicasPerMaster: 0, nodeTimeoutMillis: 60_000 }), scope))
)

const masterPorts = (c: RedisCluster) =>
  Effect.map(c.slots, (ranges) => Array.from(new Set(ranges.map((r) => r.master))))

/** The `CLIENT LIST` lines of the connections named `name` on the node on `port`. */
const clientsNamed = (c: RedisCluster, port: number, name: string) =>
  Effect.map(c.cli(port, ["CLIENT", "LIST"]), (text) =>
    text.split("\n").filter((line) => line.includes(` name=${name} `))
  )

describe.sequential("RedisClusterBackend connection options", () => {
  it.scopedLive(
    "socketTimeout: a command on a frozen master fails with ConnectionError Timeout; after SIGCONT the client reconnects",
    () =>
      Effect.gen(function* () {
        const c = yield* cluster
        const client = yield* Effect.map(
          Layer.build(RedisClusterBackend.layerClient({ rootNodes: c.rootNodes, socketTimeout: "1 second" })),
          (ctx) => Context.get(ctx, RedisClient.RedisClient)
        )
        const key = uid("cluster-timeout")
        yield* client.command(["SET", key, "v"])
        const pid = c.node(yield* c.masterOf(slotOf(key))).process.pid()!
        const resume = Effect.sync(() => process.kill(pid, "SIGCONT"))
        yield* Effect.addFinalizer(() => resume)
        process.kill(pid, "SIGSTOP")
        const started = Date.now()
        const error = yield* failureOf(client.command(["GET", key]))
        const elapsed = Date.now() - started
        yield* resume
        assert.instanceOf(error, ConnectionError)
        assert.strictEqual(error.reason, "Timeout")
        assert.include(error.message, "Timeout reading from socket")
        assert.isAtLeast(elapsed, 900)
        assert.isBelow(elapsed, 15_000)
        const thawed = Date.now()
        assert.strictEqual(yield* client.command(["GET", key]), "v")
        yield* Effect.log(
          `frozen master, socketTimeout 1 s: Timeout after ${elapsed} ms; after SIGCONT the next GET in ${Date.now() - thawed} ms`
        )
      }),
    60_000
  )

  it.scopedLive(
    "credentialProvider: every node connection and the subscriber log in with it; asked again on reconnect; a stale token fails",
    () =>
      Effect.gen(function* () {
        const c = yield* cluster
        const tokens = ["cluster-token-1", "cluster-token-2"]
        const onEvery = (args: ReadonlyArray<string>) =>
          Effect.forEach(c.nodes, (node) => c.cli(node.port, args), { discard: true })
        yield* onEvery(["ACL", "SETUSER", "rotor", "on", `>${tokens[0]}`, "~*", "&*", "+@all"])
        yield* Effect.addFinalizer(() => Effect.ignore(onEvery(["ACL", "DELUSER", "rotor"])))

        const token = yield* Ref.make(tokens[0]!)
        const asked = yield* Ref.make(0)
        const credentialProvider = Effect.gen(function* () {
          yield* Ref.update(asked, (n) => n + 1)
          return { username: "rotor", password: Redacted.make(yield* Ref.get(token)) }
        })
        const name = uid("cred").replace(/-/g, "_")
        const services = yield* Layer.build(
          RedisClusterBackend.layer(
            { rootNodes: c.rootNodes, credentialProvider, clientName: name },
            { keys: { globalKeyprefix: "{celery}:" } }
          )
        )
        const client = Context.get(services, RedisClient.RedisClient)
        const backend = Context.get(services, ResultBackend)

        assert.strictEqual(yield* Ref.get(asked), 0, "lazy: nothing asked before the first call")
        assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "rotor")
        assert.strictEqual(yield* Ref.get(asked), 1, "one cluster object: asked once")
        const masters = yield* masterPorts(c)
        for (const port of masters) {
          const lines = yield* clientsNamed(c, port, name)
          assert.isAtLeast(lines.length, 1, `a connection to the master on ${port}`)
          for (const line of lines) assert.include(line, " user=rotor ", line)
        }

        // The subscriber asks too, and logs in as the user.
        const id = uid("cluster-cred")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: "30 seconds" }))
        let subscriber: ReadonlyArray<string> = []
        while (subscriber.length === 0) {
          const lines = yield* Effect.forEach(c.nodes, (node) => clientsNamed(c, node.port, name))
          subscriber = lines.flat().filter((line) => / sub=[1-9]/.test(line))
          if (subscriber.length === 0) yield* Effect.sleep(10)
        }
        for (const line of subscriber) assert.include(line, " user=rotor ", line)
        yield* backend.markAsDone(id, "ok")
        assert.strictEqual((yield* Fiber.join(waiting)).result, "ok")
        assert.strictEqual(yield* Ref.get(asked), 2)

        // Rotation: every node takes only the new token and drops the user's connections.
        yield* onEvery(["ACL", "SETUSER", "rotor", "resetpass", `>${tokens[1]}`])
        yield* Ref.set(token, tokens[1]!)
        yield* onEvery(["CLIENT", "KILL", "USER", "rotor"])
        // The first command may still meet a dropped socket (Closed); the reconnect asks again.
        const whoami = yield* client
          .command(["ACL", "WHOAMI"])
          .pipe(Effect.retry({ times: 3, while: (e) => e._tag === "ConnectionError" }))
        assert.strictEqual(whoami, "rotor")
        assert.isAtLeast(yield* Ref.get(asked), 3)

        // A token no node knows: the next connect fails with Auth, which is not retried.
        yield* Ref.set(token, "cluster-token-stale")
        yield* onEvery(["CLIENT", "KILL", "USER", "rotor"])
        const askedBefore = yield* Ref.get(asked)
        const stale = yield* failureOf(
          client
            .command(["PING"])
            .pipe(Effect.retry({ times: 3, while: (e) => e._tag === "ConnectionError" && e.reason !== "Auth" }))
        )
        assert.instanceOf(stale, ConnectionError)
        assert.strictEqual(stale.reason, "Auth")
        assert.isAbove(yield* Ref.get(asked), askedBefore)
        assert.notInclude(String(stale), "cluster-token")
      }),
    60_000
  )
  it.scopedLive(
    "a spread watch over every master opens one subscriber connection per master, named as the others, and closing the layer closes them all",
    () =>
      Effect.gen(function* () {
        const c = yield* cluster
        const masters = yield* masterPorts(c)
        const name = uid("parts").replace(/-/g, "_")
        const layerScope = yield* Scope.make()
        const services = yield* Layer.buildWithScope(
          RedisClusterBackend.layer({ rootNodes: c.rootNodes, clientName: name }, { layout: "spread" }),
          layerScope
        )
        const consumer = Context.get(services, ResultConsumer)
        const ids = Array.from({ length: 200 }, () => uid("parts-task"))
        const watching = yield* consumer.watch(ids).pipe(Stream.runDrain, Effect.forkIn(layerScope))
        /** Per master, this layer's connections in subscriber mode. */
        const subscribers = Effect.forEach(masters, (port) =>
          Effect.map(clientsNamed(c, port, name), (lines) => lines.filter((line) => / sub=[1-9]/.test(line)).length)
        )
        let counts = yield* subscribers
        while (counts.some((n) => n === 0)) {
          yield* Effect.sleep(10)
          counts = yield* subscribers
        }
        assert.deepStrictEqual(
          counts,
          masters.map(() => 1),
          "one subscriber connection on each master"
        )
        yield* Scope.close(layerScope, Exit.void)
        assert.isTrue(Option.isSome(yield* Fiber.poll(watching)), "the watch ended with the layer")
        // Every connection of the layer, command and subscriber, on every node, is gone.
        let left = 1
        for (let i = 0; left > 0 && i < 500; i++) {
          left = (yield* Effect.forEach(c.nodes, (node) => clientsNamed(c, node.port, name))).flat().length
          if (left > 0) yield* Effect.sleep(10)
        }
        assert.strictEqual(left, 0, "no connection left open")
      }),
    60_000
  )
})
