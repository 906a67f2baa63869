/**
 * `global_keyprefix` against the real Celery 5.6.3 (the ≥ 5.5 separator rule), in both styles
 * users write: `{celery}:` (a Redis Cluster hash tag ending in a separator, kept as is) and `myapp`
 * (no separator, so `_` is added). A worker and a Python client configured with the prefix, and
 * TypeScript with `keys: { globalKeyprefix }`: the keys Celery computes are the keys TypeScript
 * uses, worker-written results are read and streamed by TypeScript, TypeScript-written results
 * are read by `AsyncResult` and wake a blocked `get()`, a chord run by the worker completes.
 * Celery 5.2.6 has no prefix (TypeScriptWrites.test.ts checks that it does not see prefixed keys);
 * the 5.3–5.4 rule (`_` always) has no Celery here and stays checked by Keys.test.ts.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Keys from "@effect-celery/core/Keys"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as InteropEnv from "./InteropEnv.js"

const { startWatch, uid } = InteropEnv

const CELERY = "5.6.3"

/** Each style, with the task key prefix Celery 5.5+ makes of it. */
const STYLES = [
  { prefix: "{celery}:", taskKeyprefix: "{celery}:celery-task-meta-" },
  { prefix: "myapp", taskKeyprefix: "myapp_celery-task-meta-" }
] as const

describe.each(STYLES)("global_keyprefix $prefix, Celery 5.6.3", ({ prefix, taskKeyprefix }) => {
  const keys = Keys.make({ globalKeyprefix: prefix, separatorEra: "5.5" })

  layer(
    InteropEnv.fullLayer(
      { worker: { resultExtended: false }, celery: CELERY, globalKeyprefix: prefix },
      { dateStyle: "offset", keys: { globalKeyprefix: prefix, separatorEra: "5.5" } }
    ),
    { excludeTestServices: true, timeout: "90 seconds" }
  )("worker and client with the prefix", (it) => {
    it.scoped("the keys Celery computes for tasks, groups and chords are the keys TypeScript uses", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const id = uid("keys")
        const gid = uid("keys-group")
        const python = yield* env.python.call("keys", { task_id: id, gid })
        assert.deepStrictEqual(python, {
          task: keys.task(id),
          group: keys.group(gid),
          chord_join: keys.chordJoin(gid),
          chord_counter: keys.chordCounter(gid),
          chord_size: keys.chordSize(gid)
        })
        assert.strictEqual(keys.taskKeyprefix, taskKeyprefix)
      })
    )

    it.scoped("a worker's results are streamed (prefixed channel) and read by TypeScript; nothing unprefixed", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("progress")
        const collect = yield* startWatch([id], { keys })
        yield* env.python.call("send", { task: "interop.progress", args: [2], task_id: id })
        const metas = yield* collect
        assert.deepStrictEqual(
          metas.map((m) => m.status),
          ["STARTED", "PROGRESS", "PROGRESS", "SUCCESS"]
        )
        assert.deepStrictEqual(metas[3]!.result, { done: 2 })
        assert.match(metas[3]!.dateDone ?? "", InteropEnv.OFFSET_DATE)

        assert.deepStrictEqual((yield* backend.get(id)).result, { done: 2 })
        assert.isTrue(yield* backend.exists(id))
        assert.isNotNull(yield* InteropEnv.rawGet(env.raw, `${taskKeyprefix}${id}`))
        assert.isNull(yield* InteropEnv.rawGet(env.raw, Keys.standard.task(id)), "nothing unprefixed")
        const waited = yield* backend.waitFor(id, { timeout: "10 seconds" })
        assert.deepStrictEqual(waited.result, { done: 2 })
      })
    )

    it.scoped(
      "TypeScript's results are read by AsyncResult, and a blocked get() is woken on the prefixed channel",
      () =>
        Effect.gen(function* () {
          const env = yield* InteropEnv.InteropEnv
          const backend = yield* ResultBackend
          const stored = uid("ts-stored")
          yield* backend.markAsDone(stored, { prefixed: true })
          const read = (yield* env.python.call("read", { task_id: stored })) as Record<string, unknown>
          assert.strictEqual(read["state"], "SUCCESS")
          assert.strictEqual(read["repr"], "{'prefixed': True}")

          const woken = uid("ts-wake")
          const waiting = yield* env.python.start("get", { task_id: woken, announce: true, timeout: 10 })
          assert.deepStrictEqual(yield* waiting.event("draining"), { subscribed: [keys.task(woken)] })
          yield* InteropEnv.awaitSubscribers(env.raw, keys.task(woken))
          yield* backend.markAsDone(woken, 7)
          assert.deepStrictEqual(yield* waiting.result, { state: "SUCCESS", repr: "7", waited: true })

          const gid = uid("ts-group")
          yield* backend.saveGroup(gid, [stored, woken])
          assert.deepStrictEqual(yield* env.python.call("restore_group", { gid, join: true }), {
            id: gid,
            children: [stored, woken],
            join: "[{'prefixed': True}, 7]"
          })
          // And the other way: a group Python saves restores in TypeScript.
          const pgid = uid("py-group")
          yield* env.python.call("save_group", { gid: pgid, children: [stored] })
          assert.deepStrictEqual(
            Option.map(yield* backend.restoreGroup(pgid), (g) => g.results.map((r) => r.id)),
            Option.some([stored])
          )
        })
    )

    it.scoped("a chord run by the worker over prefixed keys: TypeScript sees the body's sum", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const gid = uid("chord")
        const bodyId = `${gid}-body`
        const ids = [0, 1, 2].map((i) => `${gid}-${i}`)
        const collect = yield* startWatch([bodyId], { keys })
        yield* env.python.call("chord", {
          gid,
          members: ids.map((task_id, i) => ({ task: "interop.add", args: [i, 10], task_id })),
          body: { task: "interop.tsum", task_id: bodyId }
        })
        const metas = yield* collect
        assert.strictEqual(metas.at(-1)!.result, 33)
        assert.strictEqual((yield* backend.waitFor(bodyId, { timeout: "10 seconds" })).result, 33)
        for (const id of ids) assert.strictEqual((yield* backend.get(id)).groupId, gid)
        // The chord's keys were the prefixed ones, and Celery deleted them on completion.
        assert.isNull(yield* InteropEnv.rawGet(env.raw, keys.chordSize(gid)))
        assert.isNull(yield* InteropEnv.rawGet(env.raw, Keys.standard.chordSize(gid)))
      })
    )
  })
})
