/**
 * `RedisClusterBackend` (single slot, `{celery}:`) next to a real Celery 5.6.3 worker and Python
 * client on the same Redis Cluster (3 masters + 3 replicas). Celery's Redis backend has no cluster
 * client: it is pointed at the master serving the `{celery}` slot, where every one of its keys
 * lives (its PUBLISH reaches every node); the broker is a plain redis-server of its own. Both
 * directions: a worker's results (a chord included) read and awaited by TypeScript, TypeScript's
 * results read by `AsyncResult` and waking a blocked `get()`.
 */
import { assert, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as RedisClusterBackend from "@effect-celery/redis/RedisClusterBackend"
import { slotOf } from "../../src/internal/cluster.js"
import { celeryWorker, pythonClient } from "../../../../test-support/Celery.js"
import { redisCluster } from "../../../../test-support/RedisCluster.js"
import { redisServer } from "../../../../test-support/RedisServer.js"
import { CLIENT_SCRIPT, PYTHON_DIR } from "./InteropEnv.js"

const PREFIX = "{celery}:"
const uid = (label: string) => `${label}-${randomUUID()}`

describe("Redis Cluster, single slot, with Celery 5.6.3", () => {
  it.scopedLive(
    "worker results (a chord included) read by TypeScript; TypeScript results read and awaited by Python",
    () =>
      Effect.gen(function* () {
        const [cluster, broker] = yield* Effect.all([redisCluster(), redisServer()], { concurrency: "unbounded" })
        const master = yield* cluster.masterOf(slotOf(PREFIX))
        const app = {
          appDir: PYTHON_DIR,
          celeryVersion: "5.6.3" as const,
          brokerUrl: `${broker.url}/1`,
          backendUrl: `redis://127.0.0.1:${master}/0`,
          env: { CELERY_TEST_GLOBAL_KEYPREFIX: PREFIX },
          resultExtended: false,
          chordOrdered: true
        }
        const [, python] = yield* Effect.all(
          [celeryWorker({ ...app, app: "interop_app" }), pythonClient({ ...app, script: CLIENT_SCRIPT })],
          { concurrency: "unbounded" }
        )
        const services = yield* Layer.build(
          RedisClusterBackend.layer(
            { rootNodes: cluster.rootNodes },
            { keys: { globalKeyprefix: PREFIX }, layout: "single-slot" }
          )
        )
        const backend = Context.get(services, ResultBackend)

        // Python → TypeScript: a task, awaited through the cluster subscriber.
        const id = uid("progress")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: "20 seconds" }))
        yield* python.call("send", { task: "interop.progress", args: [2], task_id: id })
        assert.deepStrictEqual((yield* waiting).result, { done: 2 })

        // A chord run by the worker over the slot's keys: TypeScript sees the body's sum.
        const gid = uid("chord")
        const bodyId = `${gid}-body`
        const members = [0, 1, 2].map((i) => ({ task: "interop.add", args: [i, 10], task_id: `${gid}-${i}` }))
        const body = yield* Effect.fork(backend.waitFor(bodyId, { timeout: "20 seconds" }))
        yield* python.call("chord", { gid, members, body: { task: "interop.tsum", task_id: bodyId } })
        assert.strictEqual((yield* body).result, 33)

        // TypeScript → Python: a stored result read by AsyncResult, and a blocked get() woken.
        const stored = uid("ts-stored")
        yield* backend.markAsDone(stored, { cluster: true })
        const read = (yield* python.call("read", { task_id: stored })) as Record<string, unknown>
        assert.strictEqual(read["state"], "SUCCESS")
        assert.strictEqual(read["repr"], "{'cluster': True}")
        const woken = uid("ts-wake")
        const get = yield* python.start("get", { task_id: woken, announce: true, timeout: 20 })
        yield* get.event("draining")
        yield* backend.markAsDone(woken, 7)
        assert.deepStrictEqual(yield* get.result, { state: "SUCCESS", repr: "7", waited: true })

        // A chord driven from TypeScript (the single slot makes it one server's chord).
        const tgid = uid("ts-chord")
        yield* backend.setChordSize(tgid, 2)
        yield* backend.onChordPartReturn({ groupId: tgid, taskId: `${tgid}-0`, groupIndex: 0 }, "SUCCESS", 1)
        const done = yield* backend.onChordPartReturn(
          { groupId: tgid, taskId: `${tgid}-1`, groupIndex: 1 },
          "SUCCESS",
          2
        )
        assert.deepStrictEqual(done, { _tag: "Complete", results: [1, 2] })
      }),
    180_000
  )
})
