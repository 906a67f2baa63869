/**
 * `RedisClusterBackend`'s configuration without a server: the URL with several nodes, the layout
 * checks, the slot grouping that splits MGETs and store scripts; and a watch with no cluster up.
 */
import { assert, describe, it } from "@effect/vitest"
import calculateSlot from "cluster-key-slot"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as fc from "fast-check"
import * as RedisClusterBackend from "@effect-celery/redis/RedisClusterBackend"
import { groupBySlot, slotOf } from "../src/internal/cluster.js"
import { freePort } from "../../../test-support/RedisServer.js"

describe("RedisClusterBackend configuration", () => {
  it.effect("a URL names several root nodes, comma-separated, with one set of credentials and options", () =>
    Effect.gen(function* () {
      const config = yield* RedisClusterBackend.configOfUrl(
        "redis://app:s3cret@127.0.0.1:7000,127.0.0.1:7001,[::1]:7002?socket_connect_timeout=2"
      )
      assert.deepStrictEqual(config.rootNodes, [
        { host: "127.0.0.1", port: 7000 },
        { host: "127.0.0.1", port: 7001 },
        { host: "::1", port: 7002 }
      ])
      assert.strictEqual(config.username, "app")
      assert.strictEqual(Redacted.value(config.password!), "s3cret")
      assert.strictEqual(config.connectTimeout, 2000)
      assert.notInclude(config.uri, "s3cret")
      assert.include(config.uri, "127.0.0.1:7000,127.0.0.1:7001,[::1]:7002")
    })
  )

  it.effect("a database other than 0, or no node, is ImproperlyConfigured", () =>
    Effect.gen(function* () {
      for (const url of ["redis://127.0.0.1:7000,127.0.0.1:7001/3", "redis://", "http://127.0.0.1:7000"]) {
        const error = yield* Effect.flip(RedisClusterBackend.configOfUrl(url))
        assert.strictEqual(error._tag, "ImproperlyConfigured", url)
      }
    })
  )

  it.effect("a credential provider and the socket timeout are kept (every node connection uses them)", () =>
    Effect.gen(function* () {
      const provider = Effect.succeed({ username: "app", password: Redacted.make("token") })
      const config = yield* RedisClusterBackend.configOfUrl("redis://127.0.0.1:7000,127.0.0.1:7001?socket_timeout=3", {
        credentialProvider: provider
      })
      assert.strictEqual(config.credentialProvider, provider)
      assert.strictEqual(config.socketTimeout, 3000)
    })
  )

  it.effect("the single-slot layout needs a hash-tagged prefix; the spread layout refuses one", () =>
    Effect.gen(function* () {
      yield* RedisClusterBackend.checkLayout("single-slot", { globalKeyprefix: "{celery}:" })
      yield* RedisClusterBackend.checkLayout("spread", undefined)
      yield* RedisClusterBackend.checkLayout("spread", { globalKeyprefix: "myapp" })
      for (const keys of [
        undefined,
        { globalKeyprefix: "celery:" },
        { globalKeyprefix: "{}:" },
        { globalKeyprefix: "{celery:" }
      ]) {
        const error = yield* Effect.flip(RedisClusterBackend.checkLayout("single-slot", keys))
        assert.strictEqual(error._tag, "ImproperlyConfigured")
        assert.include(error.message, "hash-tagged")
      }
      const error = yield* Effect.flip(RedisClusterBackend.checkLayout("spread", { globalKeyprefix: "{celery}:" }))
      assert.include(error.message, "single-slot")
    })
  )

  it("keys group by slot in first-seen order; hash-tagged keys are one group", () => {
    const tagged = ["{celery}:celery-task-meta-a", "{celery}:celery-task-meta-b", "{celery}:celery-taskset-meta-g.j"]
    assert.deepStrictEqual(groupBySlot(tagged), [[0, 1, 2]])
    assert.strictEqual(slotOf("{celery}:x"), slotOf("celery"))
    const plain = Array.from({ length: 200 }, (_, i) => `celery-task-meta-${i}`)
    const groups = groupBySlot([...plain, plain[0]!])
    assert.isAbove(groups.length, 150)
    assert.deepStrictEqual(
      groups.flat().sort((a, b) => a - b),
      Array.from({ length: 201 }, (_, i) => i)
    )
    for (const group of groups)
      for (const i of group)
        assert.strictEqual(slotOf([...plain, plain[0]!][i]!), slotOf([...plain, plain[0]!][group[0]!]!))
    assert.deepStrictEqual(groups[0], [0, 200])
  })

  it("a key's slot is the server's: CRC16 of the key or of its first non-empty {hash tag}", () => {
    // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    assert.strictEqual(slotOf("123456789"), 0x31c3)
    assert.strictEqual(slotOf("foo"), 12182)
    assert.strictEqual(slotOf("{user1000}.following"), slotOf("user1000"))
    // As node-redis' `cluster-key-slot` (which routes every command) for any key, braces and
    // non-ASCII included.
    const key = fc.oneof(
      fc.string({ unit: fc.constantFrom("a", "b", "{", "}", "-", "0", "é", "𝄞") }),
      fc.string(),
      fc.uuid().map((id) => `celery-task-meta-${id}`)
    )
    fc.assert(
      fc.property(key, (k) => slotOf(k) === calculateSlot(k)),
      { numRuns: 2000 }
    )
  })
})

describe("RedisClusterBackend with no cluster up", () => {
  it.scopedLive(
    "a spread watch and a waitFor before any command, nothing listening: both fail with RetryLimitExceeded once the retry policy gives up",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const services = yield* Layer.build(
          RedisClusterBackend.layer(
            { rootNodes: [{ host: "127.0.0.1", port }] },
            {
              layout: "spread",
              retryPolicy: { maxRetries: 2, intervalStart: 0, intervalStep: 0.02, intervalMax: 0.05 }
            }
          )
        )
        const consumer = Context.get(services, ResultConsumer)
        const backend = Context.get(services, ResultBackend)
        const watched = yield* Effect.flip(Stream.runDrain(consumer.watch(["a", "b", "c"]))).pipe(
          Effect.timeout("30 seconds")
        )
        assert.strictEqual(watched._tag, "RetryLimitExceeded", String(watched))
        const waited = yield* Effect.flip(backend.waitFor("d", { timeout: "20 seconds" })).pipe(
          Effect.timeout("30 seconds")
        )
        assert.strictEqual(waited._tag, "RetryLimitExceeded", String(waited))
      }),
    60_000
  )
})
