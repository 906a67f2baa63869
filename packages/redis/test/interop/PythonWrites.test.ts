/**
 * Python writes, TypeScript reads and watches: a real Celery worker of each version (5.2.6, 5.6.3) (`--pool=solo`,
 * `task_track_started`) runs tasks sent by the Python client; the TypeScript watch is subscribed
 * before each task is sent (pre-chosen ids), so it must see every state the worker stores.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import { RemoteException, TaskFailedError } from "@effect-celery/core/Errors"
import type { TaskMeta } from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as InteropEnv from "./InteropEnv.js"

import { CELERY_VERSIONS } from "../../../../test-support/Celery.js"

const { RICH, startWatch, uid } = InteropEnv

const statuses = (metas: ReadonlyArray<TaskMeta>) => metas.map((m) => m.status)

const assertNotReady = (meta: TaskMeta) => {
  assert.isNull(meta.dateDone, `${meta.status} has no date_done`)
}

describe.each(CELERY_VERSIONS)("Celery %s", (version) => {
  const DATE = InteropEnv.datePatternOf(version)
  const dateStyle = InteropEnv.dateStyleOf(version)

  layer(
    InteropEnv.fullLayer({ worker: { resultExtended: true }, celery: version }, { dateStyle, resultExtended: true }),
    { excludeTestServices: true, timeout: "90 seconds" }
  )("Python worker writes (result_extended on), TypeScript reads", (it) => {
    it.scoped("watch sees STARTED, each PROGRESS and SUCCESS in order, with the extended fields, then ends", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const id = uid("progress")
        const collect = yield* startWatch([id])
        yield* env.python.call("send", { task: "interop.progress", args: [3], task_id: id })
        const metas = yield* collect

        assert.deepStrictEqual(statuses(metas), ["STARTED", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"])
        const [started, ...rest] = metas
        assert.deepStrictEqual(started!.result, { pid: env.worker!.process.pid(), hostname: env.worker!.hostname })
        assert.deepStrictEqual(
          rest.slice(0, 3).map((m) => m.result),
          [1, 2, 3].map((current) => ({ current, total: 3 }))
        )
        const done = rest[3]!
        assert.deepStrictEqual(done.result, { done: 3 })
        metas.slice(0, 4).forEach(assertNotReady)
        assert.match(done.dateDone ?? "", DATE)
        for (const meta of metas) {
          assert.strictEqual(meta.taskId, id)
          assert.deepStrictEqual(meta.children, [])
        }
        // update_state runs inside the task, so its metas carry the request too.
        for (const meta of [started!, done]) {
          assert.deepStrictEqual(meta.extended, {
            name: "interop.progress",
            args: [3],
            kwargs: {},
            worker: env.worker!.hostname,
            retries: 0,
            queue: "celery"
          })
        }
      })
    )

    it.scoped("exists: true for a task the worker stored, false for an id nothing was stored under", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("exists")
        const unknown = uid("unknown")
        assert.isFalse(yield* backend.exists(id), "before it is sent")
        yield* env.python.call("send", { task: "interop.add", args: [1, 2], task_id: id })
        const meta = yield* backend.waitFor(id, { timeout: "10 seconds" })
        assert.strictEqual(meta.result, 3)
        assert.isTrue(yield* backend.exists(id))
        assert.isFalse(yield* backend.exists(unknown))
        // Both read as PENDING through get: exists is what tells them apart.
        assert.strictEqual((yield* backend.get(unknown)).status, "PENDING")
        // Python's AsyncResult.forget() removes it: exists follows.
        yield* env.python.call("forget", { task_id: id })
        assert.isFalse(yield* backend.exists(id))
      })
    )

    it.scoped("nested, unicode, big-integer and float results decode exactly (watch and waitFor)", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("rich")
        const collect = yield* startWatch([id])
        yield* env.python.call("send", { task: "interop.rich", task_id: id })
        const metas = yield* collect
        assert.deepStrictEqual(statuses(metas), ["STARTED", "SUCCESS"])
        assert.deepStrictEqual(metas[1]!.result, RICH)

        const waited = yield* backend.waitFor(id, { timeout: "10 seconds" })
        assert.deepStrictEqual(waited.result, RICH)
        const got = yield* backend.get(id)
        assert.deepStrictEqual(got, waited)
        // And Python reads the same value back from what its worker stored.
        const py = yield* env.python.call("read", { task_id: id })
        assert.include(py as Record<string, unknown>, { state: "SUCCESS" })
      })
    )

    it.scoped(
      "a custom exception with several args: waitFor fails with TaskFailedError carrying type, module, args",
      () =>
        Effect.gen(function* () {
          const env = yield* InteropEnv.InteropEnv
          const backend = yield* ResultBackend
          const id = uid("fail")
          const nested = uid("fail-nested")
          const collect = yield* startWatch([id, nested])
          yield* env.python.call("send", { task: "interop.fail", args: ["card declined", 42, "EUR"], task_id: id })
          yield* env.python.call("send", { task: "interop.fail_nested", args: ["deep"], task_id: nested })
          const metas = yield* collect
          const failure = metas.find((m) => m.taskId === id && m.status === "FAILURE")!
          assert.deepStrictEqual(statuses(metas.filter((m) => m.taskId === id)), ["STARTED", "FAILURE"])
          assert.instanceOf(failure.result, RemoteException)
          assert.match(failure.dateDone ?? "", DATE)
          assert.include(failure.traceback ?? "", "interop_app.PaymentError: ('card declined', 42, 'EUR')")
          assert.strictEqual(failure.extended?.name, "interop.fail")
          assert.deepStrictEqual(failure.extended?.args, ["card declined", 42, "EUR"])

          const error = yield* Effect.flip(backend.waitFor(id, { timeout: "10 seconds" }))
          assert.instanceOf(error, TaskFailedError)
          if (!(error instanceof TaskFailedError)) return
          assert.strictEqual(error.taskId, id)
          assert.strictEqual(error.state, "FAILURE")
          assert.strictEqual(error.exception?.excType, "PaymentError")
          assert.strictEqual(error.exception?.excModule, "interop_app")
          assert.deepStrictEqual(error.exception?.excMessage, ["card declined", 42, "EUR"])
          assert.include(error.traceback ?? "", "raise PaymentError(*args)")

          const deep = yield* Effect.flip(backend.waitFor(nested, { timeout: "10 seconds" }))
          assert.instanceOf(deep, TaskFailedError)
          if (!(deep instanceof TaskFailedError)) return
          assert.strictEqual(deep.exception?.excType, "Outer.InnerError")
          assert.strictEqual(deep.exception?.qualifiedName, "interop_app.Outer.InnerError")
          assert.deepStrictEqual(deep.exception?.excMessage, ["deep"])
        })
    )

    it.scoped("retry then success: STARTED, RETRY (with its reason), STARTED, SUCCESS", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const id = uid("flaky")
        const collect = yield* startWatch([id])
        yield* env.python.call("send", { task: "interop.flaky", args: [7], task_id: id })
        const metas = yield* collect
        assert.deepStrictEqual(statuses(metas), ["STARTED", "RETRY", "STARTED", "SUCCESS"])
        const retry = metas[1]!
        assertNotReady(retry)
        assert.instanceOf(retry.result, RemoteException)
        assert.deepStrictEqual(
          retry.result,
          new RemoteException({ excType: "PaymentError", excMessage: ["transient", 0], excModule: "interop_app" })
        )
        assert.include(retry.traceback ?? "", "celery.exceptions.Retry")
        assert.deepStrictEqual(
          metas.map((m) => m.extended?.retries),
          [0, 0, 1, 1]
        )
        assert.deepStrictEqual(metas[3]!.result, { value: 7, retries: 1 })
        const waited = yield* backend.waitFor(id)
        assert.deepStrictEqual(waited.result, { value: 7, retries: 1 })
      })
    )

    it.scoped("revoked before running, and expired: REVOKED with TaskRevokedError and its reason", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const revoked = uid("revoked")
        const expired = uid("expired")
        // Watched first: Celery 5.6's worker stores REVOKED as it acknowledges the revoke command
        // (5.2 only when the task arrives). The ack comes before the task is even sent: no race.
        const collect = yield* startWatch([revoked, expired])
        yield* env.python.call("revoke", { task_id: revoked })
        yield* env.python.call("send", { task: "interop.add", args: [1, 2], task_id: revoked })
        yield* env.python.call("send", { task: "interop.add", args: [1, 2], task_id: expired, expires_in: -60 })
        const metas = yield* collect
        // Never started: the only state written is REVOKED.
        assert.deepStrictEqual(
          metas.map((m) => [m.taskId, m.status]).sort(),
          [
            [expired, "REVOKED"],
            [revoked, "REVOKED"]
          ].sort()
        )
        for (const [id, reason] of [
          [revoked, "revoked"],
          [expired, "expired"]
        ] as const) {
          const error = yield* Effect.flip(backend.waitFor(id))
          assert.instanceOf(error, TaskFailedError)
          if (!(error instanceof TaskFailedError)) return
          assert.strictEqual(error.state, "REVOKED")
          assert.deepStrictEqual(
            error.exception,
            new RemoteException({ excType: "TaskRevokedError", excMessage: [reason], excModule: "celery.exceptions" })
          )
          const meta = yield* backend.get(id)
          assert.match(meta.dateDone ?? "", DATE)
        }
      })
    )

    it.scoped("a group: members watched to SUCCESS, getMany reads them, restoreGroup after GroupResult.save()", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const gid = uid("group")
        const ids = [0, 1, 2].map((i) => `${gid}-${i}`)
        const collect = yield* startWatch(ids)
        const sent = yield* env.python.call("group", {
          gid,
          members: ids.map((task_id, i) => ({ task: "interop.add", args: [i, i], task_id })),
          save: true
        })
        assert.deepStrictEqual(sent, { id: gid, children: ids })
        const metas = yield* collect
        for (const id of ids) {
          assert.deepStrictEqual(statuses(metas.filter((m) => m.taskId === id)), ["STARTED", "SUCCESS"])
        }
        assert.isTrue(metas.every((m) => m.groupId === gid))

        const restored = yield* backend.restoreGroup(gid)
        assert.deepStrictEqual(
          restored,
          Option.some({ groupId: gid, results: ids.map((id) => ({ id, parent: null, children: null })) })
        )
        const many = yield* backend.getMany(ids, { timeout: "10 seconds" }).pipe(Stream.runCollect)
        assert.deepStrictEqual(
          Chunk.toReadonlyArray(many)
            .map((e) => (Either.isRight(e) ? [e.right.taskId, e.right.result] : ["undecodable", null]))
            .sort(),
          ids.map((id, i) => [id, 2 * i]).sort()
        )
      })
    )

    it.scoped("a chord run by the worker: header parts carry the group, the body gets the sum", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const gid = uid("chord")
        const bodyId = `${gid}-body`
        const ids = [0, 1, 2].map((i) => `${gid}-${i}`)
        const collect = yield* startWatch([...ids, bodyId])
        const sent = yield* env.python.call("chord", {
          gid,
          members: ids.map((task_id, i) => ({ task: "interop.add", args: [i, 10], task_id })),
          body: { task: "interop.tsum", task_id: bodyId }
        })
        assert.deepStrictEqual(sent, { id: bodyId, parent: gid, children: ids })
        const metas = yield* collect
        assert.deepStrictEqual(statuses(metas.filter((m) => m.taskId === bodyId)), ["STARTED", "SUCCESS"])
        assert.isTrue(metas.filter((m) => m.taskId !== bodyId).every((m) => m.groupId === gid))
        const body = yield* backend.waitFor(bodyId)
        assert.strictEqual(body.result, 33)
        assert.deepStrictEqual(body.extended?.args, [[10, 11, 12]])
      })
    )

    it.scoped("a TypeScript watcher is woken by a Python backend.store_result", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const id = uid("py-store")
        const collect = yield* startWatch([id])
        yield* env.python.call("store", { task_id: id, state: "PROGRESS", result_py: "{'step': 1}" })
        yield* env.python.call("store", { task_id: id, state: "SUCCESS", result_py: "{'answer': 42, 'pi': 3.14}" })
        const metas = yield* collect
        assert.deepStrictEqual(
          metas.map((m) => [m.status, m.result, m.children]),
          [
            ["PROGRESS", { step: 1 }, null],
            ["SUCCESS", { answer: 42, pi: 3.14 }, null]
          ]
        )
        assert.isUndefined(metas[1]!.extended)
      })
    )
  })

  layer(InteropEnv.fullLayer({ worker: { resultExtended: false }, celery: version }, { dateStyle }), {
    excludeTestServices: true,
    timeout: "90 seconds"
  })("Python worker writes (result_extended off), TypeScript reads", (it) => {
    it.scoped("no extended fields, the same states and values", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const ok = uid("plain-ok")
        const ko = uid("plain-ko")
        const collect = yield* startWatch([ok, ko])
        yield* env.python.call("send", { task: "interop.add", args: [20, 22], task_id: ok })
        yield* env.python.call("send", { task: "interop.fail", args: ["nope", 1.5], task_id: ko })
        const metas = yield* collect
        assert.deepStrictEqual(statuses(metas.filter((m) => m.taskId === ok)), ["STARTED", "SUCCESS"])
        assert.deepStrictEqual(statuses(metas.filter((m) => m.taskId === ko)), ["STARTED", "FAILURE"])
        assert.isTrue(metas.every((m) => m.extended === undefined))
        assert.strictEqual((yield* backend.waitFor(ok)).result, 42)
        const error = yield* Effect.flip(backend.waitFor(ko))
        assert.instanceOf(error, TaskFailedError)
        if (!(error instanceof TaskFailedError)) return
        assert.deepStrictEqual(error.exception?.excMessage, ["nope", 1.5])
      })
    )

    it.scoped("a group saved by Python restores in TypeScript", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const backend = yield* ResultBackend
        const gid = uid("plain-group")
        const ids = [`${gid}-a`, `${gid}-b`]
        const collect = yield* startWatch(ids)
        yield* env.python.call("group", {
          gid,
          members: ids.map((task_id) => ({ task: "interop.add", args: [1, 1], task_id }))
        })
        yield* collect
        const restored = yield* backend.restoreGroup(gid)
        assert.deepStrictEqual(
          Option.map(restored, (g) => g.results.map((r) => r.id)),
          Option.some(ids)
        )
      })
    )
  })
})
