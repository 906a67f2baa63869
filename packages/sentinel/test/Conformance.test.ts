/**
 * The core conformance suite over Sentinel: the Redis backend and consumer, unchanged, on the
 * master a real 3-sentinel topology names. One topology serves every block of the suite.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { Conformance } from "@effect-celery/core/testing"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import * as Keys from "@effect-celery/core/Keys"
import { RedisClient } from "@effect-celery/redis"
import { SentinelBackend } from "@effect-celery/sentinel"
import { sentinelTopology } from "../../../test-support/Sentinel.js"

const scope = Effect.runSync(Scope.make())
/** Started by the first block that needs it, stopped after the file. */
const topology = Effect.runSync(Effect.cached(Scope.extend(sentinelTopology(), scope)))
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 30_000)
// Started before the tests, which run concurrently and would wait for it inside their per-step
// limits: a master, a replica and three sentinels agreeing on it take seconds on a loaded machine.
beforeAll(() => Effect.runPromise(Effect.asVoid(topology)), 120_000)

const hooks = (options: BackendOptions) =>
  Layer.effect(
    Conformance.Hooks,
    Effect.gen(function* () {
      const client = yield* RedisClient.RedisClient
      const keys = Keys.make(options.keys ?? {})
      return {
        keys,
        writeRaw: (key, value) => client.command(["SET", key, value]),
        readRaw: (key) => client.get(key).pipe(Effect.map(Option.fromNullable)),
        ttl: (key) =>
          client
            .command(["TTL", key])
            .pipe(Effect.map((t) => (typeof t === "number" && t >= 0 ? Option.some(t) : Option.none()))),
        elapse: (duration) => Effect.sleep(duration),
        subscriberCount: (taskId) =>
          client
            .command(["PUBSUB", "NUMSUB", keys.task(taskId)])
            .pipe(Effect.map((r) => (Array.isArray(r) ? Number(r[1]) : 0)))
      } satisfies Conformance.Hooks
    })
  )

Conformance.suite(
  "SentinelBackend (conformance)",
  (options) =>
    Layer.unwrapEffect(
      Effect.map(topology, (topo) =>
        Layer.provideMerge(
          hooks(options),
          SentinelBackend.layerUrl(topo.url, { ...options, masterName: topo.masterName })
        )
      )
    ),
  { live: true }
)
