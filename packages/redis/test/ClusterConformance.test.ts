/**
 * Core's conformance suite over a real Redis Cluster (3 masters + 3 replicas), in both layouts of
 * `RedisClusterBackend`: single slot (every key under a hash-tagged prefix) and spread (Celery's
 * plain keys over every slot; the chord cases replaced by the rejection check). One cluster serves
 * the whole file; the hooks talk to it through an independent raw node-redis cluster client.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { createCluster } from "redis"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import * as Keys from "@effect-celery/core/Keys"
import { Conformance } from "@effect-celery/core/testing"
import * as RedisClusterBackend from "@effect-celery/redis/RedisClusterBackend"
import type { RedisCluster } from "../../../test-support/RedisCluster.js"
import { redisCluster } from "../../../test-support/RedisCluster.js"

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 60_000)

const cluster: Effect.Effect<RedisCluster, unknown> = Effect.runSync(Effect.cached(Scope.extend(redisCluster(), scope)))
// Started before the tests (which run concurrently and would all wait for it): its start-up, six
// servers and `--cluster create`, takes seconds on a loaded machine and is not what any test's
// per-step limit is about.
beforeAll(() => Effect.runPromise(Effect.asVoid(cluster)), 120_000)

const rawCluster = (c: RedisCluster) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const raw = createCluster({ rootNodes: c.rootNodes.map((n) => ({ socket: { host: n.host, port: n.port } })) })
      raw.on("error", () => {})
      await raw.connect()
      return raw
    }),
    (raw) => Effect.promise(() => raw.disconnect().catch(() => undefined))
  )

const hooks = (c: RedisCluster, options: BackendOptions) =>
  Layer.scoped(
    Conformance.Hooks,
    Effect.gen(function* () {
      const raw = yield* rawCluster(c)
      const keys = Keys.make(options.keys ?? {})
      return {
        keys,
        writeRaw: (key, value) => Effect.promise(() => raw.set(key, value)),
        readRaw: (key) => Effect.promise(() => raw.get(key)).pipe(Effect.map(Option.fromNullable)),
        ttl: (key) =>
          Effect.promise(() => raw.ttl(key)).pipe(Effect.map((t) => (t >= 0 ? Option.some(t) : Option.none()))),
        elapse: (duration) => Effect.sleep(duration),
        // The subscriber listens on one node: count on every node.
        subscriberCount: (taskId) =>
          Effect.promise(() =>
            Promise.all(
              raw.masters.concat(raw.replicas).map(async (node) => {
                const client = await raw.nodeClient(node)
                const counts = await client.pubSubNumSub(keys.task(taskId))
                return counts[keys.task(taskId)] ?? 0
              })
            )
          ).pipe(Effect.map((counts) => counts.reduce((a, b) => a + b, 0)))
      } satisfies Conformance.Hooks
    })
  )

/** The single-slot layout: a suite option without a prefix gets `{celery}:`. */
const singleSlot: Conformance.MakeLayer = (options) => {
  const withPrefix: BackendOptions =
    options.keys?.globalKeyprefix === undefined
      ? { ...options, keys: { ...options.keys, globalKeyprefix: "{celery}:" } }
      : options
  return Layer.unwrapEffect(
    Effect.map(cluster, (c) =>
      RedisClusterBackend.layer({ rootNodes: c.rootNodes }, { ...withPrefix, layout: "single-slot" }).pipe(
        Layer.merge(hooks(c, withPrefix))
      )
    )
  )
}

const spread: Conformance.MakeLayer = (options) =>
  Layer.unwrapEffect(
    Effect.map(cluster, (c) =>
      RedisClusterBackend.layer({ rootNodes: c.rootNodes }, { ...options, layout: "spread" }).pipe(
        Layer.merge(hooks(c, options))
      )
    )
  )

Conformance.suite("RedisClusterBackend, single slot", singleSlot, { live: true, globalKeyprefix: "{conformance}:" })
Conformance.suite("RedisClusterBackend, spread keys", spread, {
  live: true,
  chordsRejected: RedisClusterBackend.isChordRejected
})
