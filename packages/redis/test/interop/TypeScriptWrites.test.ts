/**
 * TypeScript writes, Python reads: results stored by the TypeScript backend, in every state, read
 * by each Celery version's (5.2.6, 5.6.3) own `AsyncResult(id).state/.result/.get()` and `GroupResult.restore`; a Python
 * client blocked in `AsyncResult.get()` is woken by a TypeScript store over Pub/Sub.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { RemoteException } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import * as PyJson from "@effect-celery/core/PyJson"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as InteropEnv from "./InteropEnv.js"

import { CELERY_VERSIONS } from "../../../../test-support/Celery.js"

const { RICH_TS, uid } = InteropEnv

const paymentError = (...args: ReadonlyArray<unknown>) =>
  new RemoteException({ excType: "PaymentError", excMessage: args, excModule: "interop_app" })

type PyRead = Record<string, unknown> & {
  readonly state: string
  readonly repr?: string
  readonly exception?: Record<string, unknown>
  readonly get?: Record<string, unknown>
}

const read = (id: string) =>
  Effect.flatMap(InteropEnv.InteropEnv, (env) => env.python.call("read", { task_id: id })) as Effect.Effect<
    PyRead,
    never
  >

describe.each(CELERY_VERSIONS)("Celery %s", (version) => {
  const DATE = InteropEnv.datePatternOf(version)
  layer(
    InteropEnv.fullLayer(
      { worker: false, celery: version },
      { dateStyle: InteropEnv.dateStyleOf(version), resultExtended: true }
    ),
    {
      excludeTestServices: true,
      timeout: "60 seconds"
    }
  )("TypeScript writes, Python reads", (it) => {
    it.scoped("SUCCESS with nested, unicode, big-integer and float values reads back identical in Python", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("ts-rich")
        yield* backend.markAsDone(id, RICH_TS)
        const expected = yield* env.python.call("repr", { expr: "roundtrip(rich_value())" })
        const py = yield* read(id)
        assert.strictEqual(py.state, "SUCCESS")
        assert.strictEqual(py.repr, expected)
        assert.deepStrictEqual(py.get, { repr: expected })
        assert.match(String(py["date_done"]), DATE)
      })
    )

    it.scoped("STARTED, a custom PROGRESS state and RETRY read as Celery wrote them", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const started = uid("ts-started")
        const progress = uid("ts-progress")
        const retry = uid("ts-retry")
        yield* backend.markAsStarted(started, { pid: 4321, hostname: "ts@node" })
        yield* backend.store(progress, "PROGRESS", { current: 3, total: 10, ratio: PyJson.float(0) })
        yield* backend.markAsRetry(retry, paymentError("transient", 1), {
          traceback: "Traceback (most recent call last):\nRetry\n"
        })

        const s = yield* read(started)
        assert.deepStrictEqual(
          [s.state, s.repr, s["date_done"]],
          ["STARTED", "{'pid': 4321, 'hostname': 'ts@node'}", null]
        )
        const p = yield* read(progress)
        assert.deepStrictEqual([p.state, p.repr], ["PROGRESS", "{'current': 3, 'total': 10, 'ratio': 0.0}"])
        const r = yield* read(retry)
        assert.strictEqual(r.state, "RETRY")
        assert.deepStrictEqual(r.exception, {
          exc_type: "PaymentError",
          exc_module: "interop_app",
          args_repr: "('transient', 1)",
          repr: "PaymentError('transient', 1)",
          str: "('transient', 1)"
        })
        assert.strictEqual(r.traceback, "Traceback (most recent call last):\nRetry\n")
      })
    )

    it.scoped("FAILURE raises the reconstructed exception type with its args in Python", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const custom = uid("ts-fail")
        const builtin = uid("ts-fail-builtin")
        const nested = uid("ts-fail-nested")
        yield* backend.markAsFailure(custom, paymentError("card declined", 42, "EUR"), { traceback: "tb" })
        yield* backend.markAsFailure(
          builtin,
          new RemoteException({ excType: "ValueError", excMessage: ["bad value"], excModule: "builtins" })
        )
        yield* backend.markAsFailure(
          nested,
          new RemoteException({
            excType: "Outer.InnerError",
            excMessage: ["deep", 2n ** 64n],
            excModule: "interop_app"
          })
        )

        const c = yield* read(custom)
        assert.strictEqual(c.state, "FAILURE")
        const raised = {
          exc_type: "PaymentError",
          exc_module: "interop_app",
          args_repr: "('card declined', 42, 'EUR')",
          repr: "PaymentError('card declined', 42, 'EUR')",
          str: "('card declined', 42, 'EUR')"
        }
        assert.deepStrictEqual(c.exception, raised)
        assert.deepStrictEqual(c.get, { raised })
        assert.strictEqual(c.traceback, "tb")
        assert.match(String(c["date_done"]), DATE)

        const b = yield* read(builtin)
        assert.deepStrictEqual(b.get, {
          raised: {
            exc_type: "ValueError",
            exc_module: "builtins",
            args_repr: "('bad value',)",
            repr: "ValueError('bad value')",
            str: "bad value"
          }
        })
        const n = yield* read(nested)
        assert.deepStrictEqual((n.get?.["raised"] as Record<string, unknown>)["exc_type"], "Outer.InnerError")
        assert.deepStrictEqual(
          (n.get?.["raised"] as Record<string, unknown>)["args_repr"],
          "('deep', 18446744073709551616)"
        )
      })
    )

    it.scoped("REVOKED raises TaskRevokedError with the reason; a missing or forgotten id is PENDING", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const revoked = uid("ts-revoked")
        const forgotten = uid("ts-forgotten")
        yield* backend.markAsRevoked(revoked, "terminated")
        yield* backend.markAsDone(forgotten, 1)
        yield* backend.forget(forgotten)

        const r = yield* read(revoked)
        assert.strictEqual(r.state, "REVOKED")
        assert.deepStrictEqual(r.get, {
          raised: {
            exc_type: "TaskRevokedError",
            exc_module: "celery.exceptions",
            args_repr: "('terminated',)",
            repr: "TaskRevokedError('terminated')",
            str: "terminated"
          }
        })
        for (const id of [forgotten, uid("ts-never")]) {
          const p = yield* read(id)
          assert.deepStrictEqual([p.state, p.repr, p["date_done"]], ["PENDING", "None", null])
        }
      })
    )

    it.scoped("extended fields and request fields read through AsyncResult", () =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const id = uid("ts-extended")
        yield* backend.markAsDone(id, "ok", {
          request: {
            task: "billing.charge",
            args: [42, "EUR", PyJson.float(2)],
            kwargs: { retry: false },
            hostname: "ts@node",
            retries: 2,
            routingKey: "priority",
            group: "g-1",
            parentId: "parent-1"
          }
        })
        const py = yield* read(id)
        assert.deepStrictEqual(
          [py["name"], py["args"], py["kwargs"], py["worker"], py["retries"], py["queue"]],
          ["'billing.charge'", "[42, 'EUR', 2.0]", "{'retry': False}", "'ts@node'", "2", "'priority'"]
        )
      })
    )

    it.scoped("a Python client blocked in AsyncResult.get() is woken by a TypeScript store (Pub/Sub)", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const ok = uid("ts-wake-ok")
        const ko = uid("ts-wake-ko")
        const key = Keys.standard.task(ok)

        const waiting = yield* env.python.start("get", { task_id: ok, announce: true, timeout: 10 })
        // Python has already done its GET (PENDING) and now blocks on its subscription.
        const draining = yield* waiting.event("draining")
        assert.deepStrictEqual(draining, { subscribed: [key] })
        yield* InteropEnv.awaitSubscribers(env.raw, key)
        yield* backend.markAsDone(ok, { woken: true, by: "typescript" })
        assert.deepStrictEqual(yield* waiting.result, {
          state: "SUCCESS",
          repr: "{'woken': True, 'by': 'typescript'}",
          waited: true
        })

        const failing = yield* env.python.start("get", { task_id: ko, announce: true, timeout: 10 })
        yield* failing.event("draining")
        yield* InteropEnv.awaitSubscribers(env.raw, Keys.standard.task(ko))
        yield* backend.markAsFailure(ko, paymentError("declined", 7))
        assert.deepStrictEqual(yield* failing.result, {
          raised: {
            exc_type: "PaymentError",
            exc_module: "interop_app",
            args_repr: "('declined', 7)",
            repr: "PaymentError('declined', 7)",
            str: "('declined', 7)"
          },
          waited: true
        })
      })
    )

    it.scoped(
      "an empty task id: refused with the message Celery 5.6 raises (5.2.6 stores it under the bare prefix)",
      () =>
        Effect.gen(function* () {
          const env = yield* InteropEnv.InteropEnv
          const backend = yield* ResultBackend
          const ours = yield* Effect.flip(backend.markAsDone("", 1))
          assert.strictEqual(ours._tag, "InvalidIdError")
          const python = yield* Effect.either(
            env.python.call("store", { task_id: "", result_py: "1", state: "SUCCESS" })
          )
          if (version === "5.2.6") {
            assert.isTrue(python._tag === "Right", "5.2.6 has no check")
            assert.isNotNull(yield* InteropEnv.rawGet(env.raw, "celery-task-meta-"))
            yield* Effect.promise(() => env.raw.del("celery-task-meta-"))
          } else {
            assert.isTrue(python._tag === "Left")
            if (python._tag === "Left") assert.include(python.left.message, `ValueError(${PyJson.repr(ours.message)})`)
            assert.isNull(yield* InteropEnv.rawGet(env.raw, "celery-task-meta-"))
          }
        })
    )

    it.scoped("a group saved by TypeScript restores in Python (GroupResult.restore) and joins", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const gid = uid("ts-group")
        const ids = [0, 1, 2].map((i) => `${gid}-${i}`)
        yield* Effect.forEach(ids, (id, i) => backend.markAsDone(id, { i, half: i / 2 }))
        yield* backend.saveGroup(gid, ids)
        assert.deepStrictEqual(yield* env.python.call("restore_group", { gid, join: true }), {
          id: gid,
          children: ids,
          join: "[{'i': 0, 'half': 0}, {'i': 1, 'half': 0.5}, {'i': 2, 'half': 1}]"
        })
        // TypeScript reads its own write, and Python's restore after a delete is None.
        assert.deepStrictEqual(
          Option.map(yield* backend.restoreGroup(gid), (g) => g.results.map((r) => r.id)),
          Option.some(ids)
        )
        yield* backend.deleteGroup(gid)
        assert.isNull(yield* env.python.call("restore_group", { gid }))
      })
    )
  })
})

layer(InteropEnv.fullLayer({ worker: false }, { dateStyle: "naive", keys: { globalKeyprefix: "p" } }), {
  excludeTestServices: true,
  timeout: "60 seconds"
})("global_keyprefix beside Celery 5.2.6, which has none (against Celery 5.6.3: Keyprefix.test.ts)", (it) => {
  it.scoped(
    "writes p_celery-task-meta-<id> and p_celery-taskset-meta-<gid>, reads them back; Python decodes the raw key",
    () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("prefixed")
        const gid = uid("prefixed-group")
        yield* backend.markAsDone(id, { prefixed: true })
        yield* backend.saveGroup(gid, [id])

        assert.isNotNull(yield* InteropEnv.rawGet(env.raw, `p_celery-task-meta-${id}`))
        assert.isNull(yield* InteropEnv.rawGet(env.raw, `celery-task-meta-${id}`))
        assert.isNotNull(yield* InteropEnv.rawGet(env.raw, `p_celery-taskset-meta-${gid}`))
        assert.deepStrictEqual((yield* backend.get(id)).result, { prefixed: true })
        assert.deepStrictEqual(
          Option.map(yield* backend.restoreGroup(gid), (g) => g.results.map((r) => r.id)),
          Option.some([id])
        )
        assert.deepStrictEqual(yield* env.python.call("read_raw", { key: `p_celery-task-meta-${id}` }), {
          state: "SUCCESS",
          repr: "{'prefixed': True}",
          task_id: id
        })
        // Celery 5.2.6 itself, unprefixed, does not see it.
        assert.strictEqual((yield* read(id)).state, "PENDING")
      })
  )
})
