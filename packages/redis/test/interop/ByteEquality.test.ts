/**
 * Byte equality: for the same inputs, the bytes the TypeScript backend stores equal the bytes
 * each Celery version (5.2.6 naive dates, 5.6.3 `+00:00` dates) stores (`backend.store_result`, `save_group`, `set_chord_size`,
 * `on_chord_part_return`), `date_done` aside. Ids differ per side (both write to the same server)
 * and are normalized away with the date.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { RemoteException } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import * as PyJson from "@effect-celery/core/PyJson"
import type { TaskRequest } from "@effect-celery/core/ResultBackend"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import type { CeleryVersion } from "../../../../test-support/Celery.js"
import { CELERY_VERSIONS } from "../../../../test-support/Celery.js"
import { HarnessError } from "../../../../test-support/RedisServer.js"
import * as InteropEnv from "./InteropEnv.js"

const { RICH_TS, uid } = InteropEnv

const DATE_FIELD = /"date_done": "([^"]*)"/

/** Replace the ids and the date so both sides compare; returns the date found. */
const normalize = (raw: string | null, ids: ReadonlyArray<string>) => {
  assert.isNotNull(raw, "value stored")
  let text = raw ?? ""
  for (const id of ids) text = text.split(id).join("<id>")
  const date = DATE_FIELD.exec(text)?.[1] ?? null
  return { text: text.replace(DATE_FIELD, '"date_done": "<date>"'), date }
}

interface Case {
  readonly name: string
  /** The TypeScript store. */
  readonly ts: (backend: ResultBackend, id: string) => Effect.Effect<void, unknown>
  /** The same store in Python (`op_store` params, without the task id). */
  readonly py: Readonly<Record<string, unknown>>
}

const payment = (...args: ReadonlyArray<unknown>) =>
  new RemoteException({ excType: "PaymentError", excMessage: args, excModule: "interop_app" })

const TRACEBACK =
  "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\ninterop_app.PaymentError: ('card declined', 42, 'EUR')\n"

const FULL_REQUEST: TaskRequest = {
  task: "interop.add",
  args: [1, PyJson.float(2), "caf\u00e9"],
  kwargs: { k: "v", n: null },
  hostname: "w1@host",
  retries: 2,
  routingKey: "celery",
  group: "group-1",
  parentId: "parent-1",
  children: [{ id: "child-1", parent: null, children: null }]
}
const FULL_REQUEST_PY =
  "dict(task='interop.add', args=[1, 2.0, 'caf\\u00e9'], kwargs={'k': 'v', 'n': None}, hostname='w1@host', retries=2, " +
  "delivery_info={'routing_key': 'celery'}, group='group-1', parent_id='parent-1', _children=[R('child-1')])"

const PLAIN_CASES: ReadonlyArray<Case> = [
  {
    name: "SUCCESS nested/unicode/big-int/float",
    ts: (b, id) => b.markAsDone(id, RICH_TS),
    py: { state: "SUCCESS", result_py: "rich_value()" }
  },
  {
    name: "SUCCESS scalars",
    ts: (b, id) =>
      b.markAsDone(id, [null, 0.1 + 0.2, 2n ** 64n, -1, "", PyJson.float(-0), PyJson.float(1.5e300), 5e-324]),
    py: { state: "SUCCESS", result_py: "[None, 0.1 + 0.2, 2**64, -1, '', -0.0, 1.5e300, 5e-324]" }
  },
  { name: "SUCCESS None", ts: (b, id) => b.markAsDone(id, null), py: { state: "SUCCESS", result_py: "None" } },
  {
    name: "FAILURE custom exception with a traceback",
    ts: (b, id) => b.markAsFailure(id, payment("card declined", 42, "EUR"), { traceback: TRACEBACK }),
    py: { state: "FAILURE", result_py: "PaymentError('card declined', 42, 'EUR')", traceback: TRACEBACK }
  },
  {
    name: "FAILURE builtin exception, no args",
    ts: (b, id) =>
      b.markAsFailure(id, new RemoteException({ excType: "KeyError", excMessage: [], excModule: "builtins" })),
    py: { state: "FAILURE", result_py: "KeyError()" }
  },
  {
    name: "RETRY",
    ts: (b, id) => b.markAsRetry(id, payment("transient", 1), { traceback: "tb" }),
    py: { state: "RETRY", result_py: "PaymentError('transient', 1)", traceback: "tb" }
  },
  {
    name: "REVOKED",
    ts: (b, id) => b.markAsRevoked(id, "expired"),
    py: { state: "REVOKED", result_py: "TaskRevokedError('expired')" }
  },
  {
    name: "STARTED",
    ts: (b, id) => b.markAsStarted(id, { pid: 99, hostname: "w1@host" }),
    py: { state: "STARTED", result_py: "{'pid': 99, 'hostname': 'w1@host'}" }
  },
  {
    name: "custom PROGRESS",
    ts: (b, id) => b.store(id, "PROGRESS", { current: 1, total: PyJson.float(3), note: "\u2603" }),
    py: { state: "PROGRESS", result_py: "{'current': 1, 'total': 3.0, 'note': '\\u2603'}" }
  },
  {
    name: "SUCCESS with a request (group, parent, children), extended off",
    ts: (b, id) => b.markAsDone(id, 1, { request: FULL_REQUEST }),
    py: { state: "SUCCESS", result_py: "1", request_py: FULL_REQUEST_PY }
  },
  {
    name: "FAILURE with an empty request",
    ts: (b, id) => b.markAsFailure(id, payment("x"), { request: {} }),
    py: { state: "FAILURE", result_py: "PaymentError('x')", request_py: "dict()" }
  }
]

const EXTENDED_CASES: ReadonlyArray<Case> = [
  {
    name: "SUCCESS with a full request, extended on",
    ts: (b, id) => b.markAsDone(id, { ok: true }, { request: FULL_REQUEST }),
    py: { state: "SUCCESS", result_py: "{'ok': True}", request_py: FULL_REQUEST_PY, extended: true }
  },
  {
    name: "STARTED with a request without delivery info, extended on",
    ts: (b, id) =>
      b.markAsStarted(
        id,
        { pid: 7, hostname: "w1@host" },
        { request: { task: "interop.add", args: [], kwargs: {}, hostname: "w1@host", retries: 0, routingKey: null } }
      ),
    py: {
      state: "STARTED",
      result_py: "{'pid': 7, 'hostname': 'w1@host'}",
      request_py: "dict(task='interop.add', args=[], kwargs={}, hostname='w1@host', retries=0)",
      extended: true
    }
  },
  {
    name: "SUCCESS without a request, extended on (no extended fields)",
    ts: (b, id) => b.markAsDone(id, "plain"),
    py: { state: "SUCCESS", result_py: "'plain'", extended: true }
  }
]

/** Run `cases` with a TypeScript backend built with `options`; compare bytes; return the dates. */
const compare = (cases: ReadonlyArray<Case>, options: BackendOptions, version: CeleryVersion) =>
  Effect.gen(function* () {
    const env = yield* InteropEnv.InteropEnv
    const backend = yield* ResultBackend
    const dates: Array<string> = []
    for (const c of cases) {
      const tsId = uid("bytes-ts")
      const pyId = uid("bytes-py")
      yield* c
        .ts(backend, tsId)
        .pipe(Effect.mapError((cause) => new HarnessError({ message: `${c.name}: TypeScript store`, cause })))
      yield* env.python.call("store", { ...c.py, task_id: pyId })
      const ts = normalize(yield* InteropEnv.rawGet(env.raw, Keys.standard.task(tsId)), [tsId, pyId])
      const py = normalize(yield* InteropEnv.rawGet(env.raw, Keys.standard.task(pyId)), [tsId, pyId])
      assert.strictEqual(ts.text, py.text, c.name)
      assert.match(
        py.date ?? "",
        py.date === null ? /^$/ : InteropEnv.datePatternOf(version),
        `${c.name}: Celery ${version}'s date style`
      )
      assert.strictEqual(ts.date === null, py.date === null, `${c.name}: date_done presence`)
      if (ts.date !== null) dates.push(ts.date)
    }
    return dates
  }).pipe(Effect.provide(InteropEnv.tsLayer(options)))

describe.each(CELERY_VERSIONS)("Celery %s", (version) => {
  const dateStyle = InteropEnv.dateStyleOf(version)
  const DATE = InteropEnv.datePatternOf(version)
  layer(InteropEnv.layer({ worker: false, celery: version }), { excludeTestServices: true, timeout: "60 seconds" })(
    `byte equality with Celery ${version}`,
    (it) => {
      it.scoped(`task metas in every state, with and without a request (dateStyle ${dateStyle})`, () =>
        Effect.gen(function* () {
          const dates = yield* compare(PLAIN_CASES, { dateStyle }, version)
          assert.isAbove(dates.length, 0)
          for (const date of dates) assert.match(date, DATE)
        })
      )

      it.scoped("result_extended on: name, args, kwargs, worker, retries, queue", () =>
        Effect.gen(function* () {
          const dates = yield* compare(EXTENDED_CASES, { dateStyle, resultExtended: true }, version)
          for (const date of dates) assert.match(date, DATE)
        })
      )

      it.scoped("group meta, chord size and chord join members", () =>
        Effect.gen(function* () {
          const env = yield* InteropEnv.InteropEnv
          const backend = yield* ResultBackend
          const tsGid = uid("bytes-gts")
          const pyGid = uid("bytes-gpy")
          const members = [uid("member"), uid("member")]
          const ids = [tsGid, pyGid]

          yield* backend.saveGroup(tsGid, members)
          yield* env.python.call("save_group", { gid: pyGid, children: members })
          const group = (gid: string) =>
            Effect.map(InteropEnv.rawGet(env.raw, Keys.standard.group(gid)), (raw) => normalize(raw, ids).text)
          assert.strictEqual(yield* group(tsGid), yield* group(pyGid))

          yield* backend.setChordSize(tsGid, 3)
          yield* env.python.call("set_chord_size", { gid: pyGid, size: 3 })
          const size = (gid: string) => InteropEnv.rawGet(env.raw, Keys.standard.chordSize(gid))
          assert.strictEqual(yield* size(tsGid), "3")
          assert.strictEqual(yield* size(pyGid), "3")

          // Parts 0 and 1 of 3: the chord does not complete, the members stay in `.j`.
          const body = { task: "interop.tsum", task_id: uid("body") }
          yield* backend.onChordPartReturn({ groupId: tsGid, taskId: members[0]!, groupIndex: 0 }, "SUCCESS", RICH_TS)
          yield* backend.onChordPartReturn(
            { groupId: tsGid, taskId: members[1]!, groupIndex: 1 },
            "FAILURE",
            payment("x", 1)
          )
          yield* env.python.call("chord_part", {
            gid: pyGid,
            task_id: members[0],
            group_index: 0,
            state: "SUCCESS",
            result_py: "rich_value()",
            body
          })
          yield* env.python.call("chord_part", {
            gid: pyGid,
            task_id: members[1],
            group_index: 1,
            state: "FAILURE",
            result_py: "PaymentError('x', 1)",
            body
          })
          const join = (gid: string) =>
            Effect.tryPromise({
              try: () => env.raw.zRange(Keys.standard.chordJoin(gid), 0, -1),
              catch: (cause) => new HarnessError({ message: "ZRANGE", cause })
            })
          const tsJoin = yield* join(tsGid)
          assert.lengthOf(tsJoin, 2)
          assert.deepStrictEqual(tsJoin, yield* join(pyGid))
        }).pipe(Effect.provide(InteropEnv.tsLayer({ dateStyle })))
      )
    }
  )
})
