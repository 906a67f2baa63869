import { DecodeError, RemoteException } from "@effect-celery/core/Errors"
import * as Meta from "@effect-celery/core/Meta"
import * as PyJson from "@effect-celery/core/PyJson"
import type { TaskRequest } from "@effect-celery/core/ResultBackend"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Schema } from "effect"
import fc from "fast-check"
import { oracle, tagged } from "./CeleryCodec.js"

/** A ResultRef as the Python AsyncResult / GroupResult it stands for. */
const taggedRef = (r: Meta.ResultRef): unknown => {
  const parent = r.parent === null ? null : taggedRef(r.parent)
  return r.children === null ? { res: [r.id, parent] } : { grp: [r.id, r.children.map(taggedRef), parent] }
}

const pyRequest = (r: TaskRequest | undefined): unknown => {
  if (r === undefined) return null
  const out: Record<string, unknown> = {}
  if (r.group !== undefined) out["group"] = r.group
  if (r.parentId !== undefined) out["parent_id"] = r.parentId
  if (r.task !== undefined) out["task"] = r.task
  if (r.hostname !== undefined) out["hostname"] = r.hostname
  if (r.retries !== undefined) out["retries"] = r.retries
  if (r.args !== undefined) out["args"] = tagged(r.args)
  if (r.kwargs !== undefined) out["kwargs"] = tagged(r.kwargs)
  if (r.routingKey !== undefined) out["routing_key"] = r.routingKey
  if (r.children !== undefined) out["children"] = r.children.map(taggedRef)
  return out
}

const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got Left: ${JSON.stringify(e.left)}`)
  return e.right
}
const left = <A, E>(e: Either.Either<A, E>): E => {
  if (Either.isRight(e)) throw new Error(`expected Left, got Right: ${PyJson.encodeLossy(e.right)}`)
  return e.left
}

const exc = (excType: string, excModule: string, ...excMessage: Array<unknown>) =>
  new RemoteException({ excType, excMessage, excModule })

const ref = (id: string, parent: Meta.ResultRef | null = null): Meta.ResultRef => ({ id, parent, children: null })
const groupRef = (
  id: string,
  children: ReadonlyArray<Meta.ResultRef>,
  parent: Meta.ResultRef | null = null
): Meta.ResultRef => ({
  id,
  parent,
  children
})

// ---------------------------------------------------------------------------------------------
// Celery-built vectors

interface Case {
  readonly name: string
  readonly state: string
  readonly result: unknown
  /** The Python value when it is not what `tagged(result)` means (e.g. an AsyncResult). */
  readonly py?: unknown
  readonly traceback?: string
  readonly request?: TaskRequest
  readonly extended?: boolean
  readonly now?: number
  /** Holds integral floats (`5.0`): they read back as ints, so re-encoding differs. */
  readonly floatsLost?: boolean
}

const NOW = 1763819224963 // 2025-11-22T13:47:04.963
const TB =
  "Traceback (most recent call last):\n  File \"billing/tasks.py\", line 5, in charge\n    raise PaymentError(\"card declined\", amount, currency)\nbilling.tasks.PaymentError: ('card declined', 42, 'EUR')\n"

const cases: ReadonlyArray<Case> = [
  {
    name: "success, no request",
    state: "SUCCESS",
    result: { charged: 42, currency: "EUR", ok: true, note: "caf\u00e9" }
  },
  { name: "success in a task", state: "SUCCESS", result: { charged: 42 }, request: {} },
  { name: "success, null result, µs = 0", state: "SUCCESS", result: null, request: {}, now: 1763819224000 },
  {
    name: "failure, 3 args",
    state: "FAILURE",
    result: exc("PaymentError", "billing.tasks", "card declined", 42, "EUR"),
    traceback: TB,
    request: {}
  },
  { name: "failure, no args", state: "FAILURE", result: exc("KeyError", "builtins"), traceback: "tb", request: {} },
  { name: "failure, one arg", state: "FAILURE", result: exc("ValueError", "builtins", "bad value"), request: {} },
  {
    name: "failure, nested class and rich args",
    state: "FAILURE",
    result: exc(
      "Outer.Inner",
      "tasks.nested",
      "\u00e9\u{1F600}\u4e2d",
      1.5,
      null,
      [1, [2]],
      { k: "v", "\u00fc": [true] },
      2n ** 64n
    ),
    request: {}
  },
  {
    name: "retry",
    state: "RETRY",
    result: exc("ConnectionError", "builtins", "try again"),
    traceback: "celery.exceptions.Retry: Retry in 1s",
    request: { parentId: "r-1", children: [ref("r-1")] }
  },
  { name: "revoked", state: "REVOKED", result: exc("TaskRevokedError", "celery.exceptions", "terminated") },
  {
    name: "started, extended, chord member (spec example)",
    state: "STARTED",
    result: { pid: 8994, hostname: "w1@host" },
    request: {
      group: "6a7970d6-39f0-4c17-b223-c7e7e24038d1",
      task: "tasks.add",
      args: [0, 0],
      kwargs: {},
      hostname: "w1@host",
      retries: 0,
      routingKey: "celery"
    },
    extended: true
  },
  { name: "pending", state: "PENDING", result: null },
  { name: "received", state: "RECEIVED", result: null, request: {} },
  { name: "rejected", state: "REJECTED", result: "requeue", request: {} },
  { name: "ignored", state: "IGNORED", result: null },
  { name: "custom state", state: "PROGRESS", result: { current: 3, total: 10 } },
  {
    name: "big ints",
    state: "SUCCESS",
    result: [2n ** 64n, -(2n ** 70n), 2n ** 53n + 1n, 1e22, 9007199254740991, -0x7fffffff],
    request: {}
  },
  {
    name: "floats",
    state: "SUCCESS",
    result: [
      PyJson.float(1),
      1e-7,
      PyJson.float(1e22),
      0.1,
      -0,
      NaN,
      Infinity,
      -Infinity,
      PyJson.float(1.5e16),
      123.456,
      5e-324,
      0.0001,
      1e-5
    ],
    request: {},
    floatsLost: true
  },
  {
    name: "unicode",
    state: "SUCCESS",
    result: [
      "caf\u00e9",
      "\u{1F600}\u{1F680}",
      "\u4e2d\u6587\u65e5\u672c",
      "\u0000\u001f\u007f\u2028",
      "q\"'\\/",
      "\ud800"
    ],
    request: {}
  },
  { name: "nested and empty", state: "SUCCESS", result: { a: [], b: {}, c: [[[{ d: [null] }]]], "": "" }, request: {} },
  {
    name: "extended, full request",
    state: "SUCCESS",
    result: 3,
    request: {
      group: "g-1",
      parentId: "p-1",
      task: "billing.tasks.charge",
      args: [42, "EUR", PyJson.float(2.5), [1, 2]],
      kwargs: { retry: false, "\u00e9": null },
      hostname: "celery@worker-1",
      retries: 3,
      routingKey: "celery",
      children: [ref("c-1", ref("p-0")), groupRef("g-2", [ref("m-1"), ref("m-2", ref("m-1"))]), ref("c-3")]
    },
    extended: true
  },
  { name: "extended, bare request", state: "FAILURE", result: exc("E", "m", "x"), request: {}, extended: true },
  { name: "extended without a request", state: "SUCCESS", result: 1, extended: true },
  {
    name: "extended, queue null",
    state: "SUCCESS",
    result: 1,
    request: { routingKey: null, task: "t" },
    extended: true
  },
  { name: "empty group and parent are not written", state: "SUCCESS", result: 1, request: { group: "", parentId: "" } },
  {
    name: "returns an AsyncResult",
    state: "SUCCESS",
    result: Meta.refToTuple(ref("child", ref("parent"))),
    py: taggedRef(ref("child", ref("parent"))),
    request: {}
  },
  {
    name: "returns a GroupResult",
    state: "SUCCESS",
    result: Meta.refToTuple(groupRef("gr", [ref("a"), ref("b")])),
    py: taggedRef(groupRef("gr", [ref("a"), ref("b")])),
    request: {}
  },
  { name: "failure with a non-exception result", state: "FAILURE", result: "plain text", request: {} }
]

const metaRequest = (c: Case, taskId: string) => ({
  op: "meta",
  task_id: taskId,
  state: c.state,
  result: c.py ?? tagged(c.result),
  traceback: c.traceback ?? null,
  request: pyRequest(c.request),
  extended: c.extended === true,
  now_ms: c.now ?? NOW
})

const makeMeta = (c: Case, taskId: string) =>
  Meta.make({
    taskId,
    state: c.state,
    result: c.result,
    traceback: c.traceback,
    request: c.request,
    resultExtended: c.extended,
    now: c.now ?? NOW,
    dateStyle: "naive"
  })

describe("Meta.make + encodeTaskMeta against Celery 5.2", () => {
  it.effect("writes the bytes Celery writes, for every case", () =>
    Effect.gen(function* () {
      const replies = yield* oracle(cases.map((c, i) => metaRequest(c, `task-${i}-\u00e9`)))
      cases.forEach((c, i) => {
        const taskId = `task-${i}-\u00e9`
        const expected = replies[i]!["bytes"] as string
        const meta = makeMeta(c, taskId)
        assert.strictEqual(Meta.encodeTaskMeta(meta), expected, c.name)
        assert.strictEqual(right(Meta.encodeTaskMetaEither(meta)), expected, c.name)
      })
    })
  )

  it.effect("reads back what it wrote, and Celery reads it the same way", () =>
    Effect.gen(function* () {
      const written = cases.map((c, i) => Meta.encodeTaskMeta(makeMeta(c, `rt-${i}`)))
      const readable = cases
        .map((c, i) => (c.state !== "FAILURE" || c.result instanceof RemoteException ? i : -1))
        .filter((i) => i >= 0)
      const replies = yield* oracle(readable.map((i) => ({ op: "decode_meta", text: written[i] })))
      readable.forEach((i, k) => {
        const c = cases[i]!
        const meta = right(Meta.decodeTaskMeta(`rt-${i}`, written[i]!))
        if (c.floatsLost !== true) assert.strictEqual(Meta.encodeTaskMeta(meta), written[i], `${c.name}: re-encoding`)
        assert.strictEqual(meta.status, c.state)
        const py = replies[k]!
        assert.strictEqual(py["status"], c.state, c.name)
        if (c.floatsLost !== true)
          assert.strictEqual(PyJson.repr(meta.result), py["repr"], `${c.name}: repr of the result`)
        if (c.result instanceof RemoteException) assert.deepStrictEqual(meta.result, c.result, c.name)
      })
    })
  )

  it.effect("matches Celery on random results and requests", () =>
    Effect.gen(function* () {
      const seed = Date.now() ^ 0x3e7a
      const value = fc.letrec<{ v: unknown }>((tie) => ({
        v: fc.oneof(
          { depthSize: "small" },
          fc.oneof(
            fc.constant(null),
            fc.boolean(),
            fc.string({ unit: "binary", maxLength: 8 }),
            fc.integer(),
            fc.double(),
            fc.bigInt()
          ),
          fc.array(tie("v"), { maxLength: 4 }),
          fc.dictionary(fc.string({ maxLength: 6 }), tie("v"), { maxKeys: 4 })
        )
      })).v
      const arbCase = fc.record({
        state: fc.constantFrom("SUCCESS", "FAILURE", "RETRY", "REVOKED", "STARTED", "PENDING", "PROGRESS"),
        result: value,
        args: fc.array(value, { maxLength: 3 }),
        withRequest: fc.boolean(),
        extended: fc.boolean(),
        group: fc.option(fc.string({ maxLength: 5 }), { nil: undefined }),
        now: fc.integer({ min: 0, max: 4102444800000 })
      })
      const sample = fc.sample(arbCase, { numRuns: 300, seed })
      const built: Array<Case> = sample.map((s) => ({
        name: `random ${seed}`,
        state: s.state,
        result:
          s.state === "FAILURE" || s.state === "RETRY" || s.state === "REVOKED"
            ? exc("Err", "mod", ...s.args)
            : s.result,
        ...(s.withRequest ? { request: { group: s.group, args: s.args, task: "t" } } : {}),
        extended: s.extended,
        now: s.now
      }))
      const replies = yield* oracle(built.map((c, i) => metaRequest(c, `rnd-${i}`)))
      built.forEach((c, i) => {
        assert.strictEqual(
          Meta.encodeTaskMeta(makeMeta(c, `rnd-${i}`)),
          replies[i]!["bytes"],
          `seed ${seed} #${i}: ${PyJson.encodeLossy(c.result)}`
        )
      })
    })
  )
})

describe("Meta.formatDateDone", () => {
  it.effect("writes Python's isoformat, naive and with +00:00", () =>
    Effect.gen(function* () {
      const instants = [NOW, 1763819224000, 0, -1, 1763819224963.123, 1763819224000.001, 253402300799999, 951782400000]
      const replies = yield* oracle(
        instants.map((ms) => ({ op: "meta", task_id: "d", state: "SUCCESS", result: null, now_ms: ms }))
      )
      instants.forEach((ms, i) => {
        assert.strictEqual(Meta.formatDateDone(ms, "naive"), replies[i]!["naive"], String(ms))
        assert.strictEqual(Meta.formatDateDone(ms, "offset"), replies[i]!["offset"], String(ms))
      })
      assert.strictEqual(Meta.formatDateDone(NOW, "naive"), "2025-11-22T13:47:04.963000")
      assert.strictEqual(Meta.formatDateDone(1763819224000, "offset"), "2025-11-22T13:47:04+00:00")
      assert.strictEqual(Meta.formatDateDone(NaN, "naive"), "1970-01-01T00:00:00")
    })
  )

  it.effect("date_done is written only for READY states, in the chosen style", () =>
    Effect.sync(() => {
      const at = (state: string, dateStyle: Meta.DateStyle) =>
        Meta.make({ taskId: "t", state, result: null, now: NOW, dateStyle }).dateDone
      assert.strictEqual(at("SUCCESS", "offset"), "2025-11-22T13:47:04.963000+00:00")
      assert.strictEqual(at("FAILURE", "naive"), "2025-11-22T13:47:04.963000")
      assert.strictEqual(at("REVOKED", "naive"), "2025-11-22T13:47:04.963000")
      for (const state of ["PENDING", "STARTED", "RETRY", "PROGRESS", "RECEIVED"])
        assert.isNull(at(state, "offset"), state)
    })
  )
})

describe("chord members and group metas against Celery 5.2", () => {
  const members: ReadonlyArray<readonly [string, string, unknown]> = [
    ["m-ok", "SUCCESS", 42],
    ["m-dict", "SUCCESS", { a: [1, 2.5], "\u00e9": null }],
    ["m-null", "SUCCESS", null],
    ["m-fail", "FAILURE", exc("MyError", "tasks", "x", 1)],
    ["m-nested", "FAILURE", exc("Outer.Inner", "nowhere.at.all", "caf\u00e9")],
    ["m-revoked", "REVOKED", exc("TaskRevokedError", "celery.exceptions", "revoked")],
    ["m-retry", "RETRY", exc("ValueError", "builtins", "again")],
    ["m-keyerror", "FAILURE", exc("KeyError", "builtins")],
    ["m-custom", "PROGRESS", { done: 1 }]
  ]

  it.effect("encodes [1, tid, state, result] as Celery does, and Celery unpacks it", () =>
    Effect.gen(function* () {
      const replies = yield* oracle(
        members.map(([tid, state, result]) => ({ op: "chord", task_id: tid, state, result: tagged(result) }))
      )
      const encoded = members.map(([tid, state, result]) => Meta.encodeChordMember(tid, state, result))
      encoded.forEach((bytes, i) => assert.strictEqual(bytes, replies[i]!["bytes"], members[i]![0]))
      const unpacked = yield* oracle(encoded.map((text) => ({ op: "chord_unpack", text })))
      encoded.forEach((bytes, i) => {
        const [tid, state, result] = members[i]!
        const m = right(Meta.decodeChordMember("g", bytes))
        assert.strictEqual(m.taskId, tid)
        assert.strictEqual(m.state, state)
        assert.deepStrictEqual(m.result, result)
        const py = unpacked[i]!
        if (state === "FAILURE" || state === "REVOKED") {
          // Celery's ChordError text, as the body's failure will carry it.
          assert.strictEqual(`Dependency ${tid} raised ${PyJson.repr(m.result)}`, py["chord_error"], tid)
        } else {
          assert.strictEqual(PyJson.repr(m.result), py["repr"], tid)
        }
      })
    })
  )

  it.effect("encodes the group meta as save_group does and reads nested groups back", () =>
    Effect.gen(function* () {
      const groups: ReadonlyArray<Meta.GroupMeta> = [
        { groupId: "g-1", results: [ref("t-1"), ref("t-2")] },
        { groupId: "g-empty", results: [] },
        {
          groupId: "g-\u00e9",
          results: [
            ref("t-3", ref("t-0")),
            groupRef("g-inner", [ref("t-4"), groupRef("g-deep", [ref("t-5")])]),
            ref("t-6")
          ]
        }
      ]
      const replies = yield* oracle(
        groups.map((g) => ({ op: "group", group: taggedRef(groupRef(g.groupId, g.results)) }))
      )
      groups.forEach((g, i) => {
        const bytes = Meta.encodeGroupMeta(g)
        assert.strictEqual(bytes, replies[i]!["bytes"], g.groupId)
        assert.deepStrictEqual(right(Meta.decodeGroupMeta(g.groupId, bytes)), g)
      })
      assert.strictEqual(
        Meta.encodeGroupMeta(groups[0]!),
        '{"result": [["g-1", null], [[["t-1", null], null], [["t-2", null], null]]]}'
      )
    })
  )

  it.effect("reads the old bare-id tuple form and rejects malformed groups and members", () =>
    Effect.sync(() => {
      // result_from_tuple: `id, parent = res if isinstance(res, (list, tuple)) else (res, None)`.
      assert.deepStrictEqual(right(Meta.decodeGroupMeta("g", '{"result": ["g", [["t1", null]]]}')), {
        groupId: "g",
        results: [ref("t1")]
      })
      for (const raw of [
        "{",
        "[]",
        "{}",
        '{"result": null}',
        '{"result": [["g", null], null]}',
        '{"result": [["g", null], [[[5, null], null]]]}',
        '{"result": [["g", null], "x"]}',
        '{"result": [["g", null, 1], []]}'
      ]) {
        const e = left(Meta.decodeGroupMeta("g", raw))
        assert.instanceOf(e, DecodeError, raw)
        assert.strictEqual(e.id, "g")
        assert.strictEqual(e.head, raw.slice(0, 100))
      }
      for (const raw of [
        '[1, "t", "SUCCESS"]',
        "{}",
        '[1, 2, "SUCCESS", 3]',
        '[1, "t", null, 3]',
        '[1, "t", "FAILURE", {"exc_message": []}]',
        '[1, "t"'
      ]) {
        const e = left(Meta.decodeChordMember("g", raw))
        assert.instanceOf(e, DecodeError, raw)
      }
      assert.isNull(right(Meta.decodeChordMember("g", '[1, "t", "FAILURE", null]')).result)
    })
  )
})

// ---------------------------------------------------------------------------------------------

describe("Meta.decodeTaskMeta across Celery eras", () => {
  const spec = [
    '{"status": "SUCCESS", "result": {"charged": 42, "currency": "EUR", "ok": true, "note": "caf\\u00e9"}, "traceback": null, "children": [], "date_done": "2026-11-22T13:50:36.972810", "task_id": "a1b2c3d4-0000-4000-8000-000000000001"}',
    '{"status": "FAILURE", "result": {"exc_type": "PaymentError", "exc_message": ["card declined", 42, "EUR"], "exc_module": "billing.tasks"}, "traceback": "Traceback (most recent call last):\\n  File \\"billing/tasks.py\\", line 5, in charge\\n    raise PaymentError(\\"card declined\\", amount, currency)\\nbilling.tasks.PaymentError: (\'card declined\', 42, \'EUR\')\\n", "children": [], "date_done": "2026-11-22T13:50:36.974715", "task_id": "a1b2c3d4-0000-4000-8000-000000000002"}',
    '{"status": "SUCCESS", "result": {"charged": 42, "currency": "EUR", "ok": true, "note": "caf\\u00e9"}, "traceback": null, "children": [], "date_done": "2026-11-22T13:50:36.981359", "name": "billing.tasks.charge", "args": [42, "EUR"], "kwargs": {"retry": false}, "worker": "celery@worker-1", "retries": 0, "queue": "celery", "task_id": "a1b2c3d4-0000-4000-8000-000000000003"}',
    '{"status": "STARTED", "result": {"pid": 8994, "hostname": "w1@host"}, "traceback": null, "children": [], "date_done": null, "group_id": "6a7970d6-39f0-4c17-b223-c7e7e24038d1", "name": "tasks.add", "args": [0, 0], "kwargs": {}, "worker": "w1@host", "retries": 0, "queue": "celery", "task_id": "c0000000-0000-0000-0000-000000000000"}',
    '{"status": "REVOKED", "result": {"exc_type": "TaskRevokedError", "exc_message": ["terminated"], "exc_module": "celery.exceptions"}, "traceback": null, "children": null, "date_done": "2026-11-22T13:50:37.000001", "task_id": "rv1"}',
    '{"status": "PROGRESS", "result": {"current": 3, "total": 10}, "traceback": null, "children": null, "date_done": null, "task_id": "p1"}',
    // Celery 5.4 / 5.5: offset dates; a retry with parent and children; stamps (extended, >= 5.3).
    '{"status": "SUCCESS", "result": 1, "traceback": null, "children": [], "date_done": "2026-11-22T13:47:04.963130+00:00", "task_id": "o1"}',
    '{"status": "SUCCESS", "result": 1, "traceback": null, "children": [], "date_done": "2026-11-22T14:47:04+01:00", "task_id": "o2"}',
    '{"status": "RETRY", "result": {"exc_type": "ValueError", "exc_message": ["again"], "exc_module": "builtins"}, "traceback": "tb", "children": [[["r1", null], null]], "date_done": null, "parent_id": "r1", "task_id": "r1"}',
    '{"status": "SUCCESS", "result": [1, 2], "traceback": null, "children": [], "date_done": "2026-11-22T13:47:04.963130+00:00", "group_id": "g", "parent_id": "p", "name": "t", "args": [], "kwargs": {}, "worker": "w", "retries": 0, "queue": null, "stamped_headers": ["s1"], "s1": "v", "task_id": "s1"}',
    // kombu >= 5.3 envelopes and Python-only number literals in a result.
    '{"status": "SUCCESS", "result": {"at": {"__type__": "datetime", "__value__": "2026-11-22T13:47:04.963130+00:00"}, "amount": {"__type__": "decimal", "__value__": "1.10"}, "id": {"__type__": "uuid", "__value__": {"hex": "0ea00be8a1b24c3d8e0f000000000001", "version": 4}}}, "traceback": null, "children": [], "date_done": "2026-11-22T13:47:04.963130+00:00", "task_id": "e1"}',
    '{"status": "SUCCESS", "result": [NaN, Infinity, -Infinity, 123456789012345678901234567890], "traceback": null, "children": [], "date_done": "2026-11-22T13:47:04", "task_id": "n1"}',
    '{"status": "WHATEVER", "result": "custom", "traceback": null, "children": null, "date_done": null, "task_id": "w1"}'
  ]

  it.effect("reads every era and re-encodes it byte for byte", () =>
    Effect.sync(() => {
      for (const raw of spec) {
        const id = (JSON.parse(raw.replace(/NaN|-?Infinity|\d{20,}/g, "0")) as { task_id: string }).task_id
        const meta = right(Meta.decodeTaskMeta(id, raw))
        assert.strictEqual(meta.taskId, id)
        assert.strictEqual(Meta.encodeTaskMeta(meta), raw)
        assert.deepStrictEqual(right(Schema.decodeEither(Meta.TaskMetaFromJson)(raw)), meta)
      }
    })
  )

  it.effect("exposes the fields in their TS shape", () =>
    Effect.sync(() => {
      const failure = right(Meta.decodeTaskMeta("a1b2c3d4-0000-4000-8000-000000000002", spec[1]!))
      assert.deepStrictEqual(failure.result, exc("PaymentError", "billing.tasks", "card declined", 42, "EUR"))
      assert.strictEqual(failure.dateDone, "2026-11-22T13:50:36.974715")
      assert.deepStrictEqual(failure.children, [])
      assert.isUndefined(failure.extended)
      const ext = right(Meta.decodeTaskMeta("x", spec[2]!))
      assert.deepStrictEqual(ext.extended, {
        name: "billing.tasks.charge",
        args: [42, "EUR"],
        kwargs: { retry: false },
        worker: "celery@worker-1",
        retries: 0,
        queue: "celery"
      })
      assert.strictEqual(ext.taskId, "x", "the key names the meta")
      const started = right(Meta.decodeTaskMeta("c", spec[3]!))
      assert.strictEqual(started.groupId, "6a7970d6-39f0-4c17-b223-c7e7e24038d1")
      assert.isNull(started.dateDone)
      const stamped = right(Meta.decodeTaskMeta("s1", spec[9]!))
      assert.deepStrictEqual(stamped.extra, { stamped_headers: ["s1"], s1: "v" })
      assert.strictEqual(stamped.parentId, "p")
      const env = right(Meta.decodeTaskMeta("e1", spec[10]!)).result as Record<string, PyJson.Typed>
      assert.instanceOf(env["at"], PyJson.Typed)
      assert.strictEqual(env["amount"]!.value, "1.10")
      const nums = right(Meta.decodeTaskMeta("n1", spec[11]!)).result
      assert.deepStrictEqual(nums, [NaN, Infinity, -Infinity, 123456789012345678901234567890n])
      assert.isNull(right(Meta.decodeTaskMeta("r", spec[4]!)).children)
    })
  )

  it.effect("fills missing optional fields and follows exception_to_python", () =>
    Effect.gen(function* () {
      const minimal = right(Meta.decodeTaskMeta("m", '{"status": "SUCCESS", "result": 1}'))
      assert.deepStrictEqual(minimal, {
        taskId: "m",
        status: "SUCCESS",
        result: 1,
        traceback: null,
        children: null,
        dateDone: null
      })
      assert.deepStrictEqual(
        right(Meta.decodeTaskMeta("p", '{"status": "PENDING", "result": null}')),
        Meta.pending("p")
      )
      const odd = [
        '{"status": "FAILURE", "result": {"exc_type": "MyError", "exc_message": ["x"]}}',
        '{"status": "FAILURE", "result": {"exc_type": "MyError", "exc_module": "m"}}',
        '{"status": "FAILURE", "result": {"exc_type": "MyError", "exc_message": "one", "exc_module": "m"}}',
        '{"status": "FAILURE", "result": {"exc_type": "MyError", "exc_message": null, "exc_module": "m"}}',
        '{"status": "FAILURE", "result": {"exc_type": "MyError", "exc_message": [], "exc_module": null}}',
        '{"status": "REVOKED", "result": null}',
        '{"status": "RETRY", "result": {}}',
        '{"status": "FAILURE", "result": ""}',
        '{"status": "FAILURE", "result": 0}'
      ]
      const ours = odd.map((raw) => right(Meta.decodeTaskMeta("o", raw)).result)
      assert.deepStrictEqual(ours.slice(0, 5), [
        exc("MyError", Meta.SYNTHESIZED_EXC_MODULE, "x"),
        exc("MyError", "m", ""),
        exc("MyError", "m", "one"),
        exc("MyError", "m", null),
        exc("MyError", Meta.SYNTHESIZED_EXC_MODULE)
      ])
      assert.deepStrictEqual(ours.slice(5), [null, null, null, null])
      const replies = yield* oracle(odd.map((text) => ({ op: "decode_meta", text })))
      ours.forEach((r, i) => assert.strictEqual(PyJson.repr(r), replies[i]!["repr"], odd[i]))
    })
  )

  const corrupt: ReadonlyArray<readonly [string, RegExp]> = [
    ['{"status": "SUCCESS", "result": ', /Invalid JSON: Expecting value/],
    ["", /Invalid JSON/],
    ["[]", /must be a JSON object, got a list/],
    ["null", /must be a JSON object, got null/],
    ['"SUCCESS"', /must be a JSON object, got a string/],
    ['{"__type__": "decimal", "__value__": "1"}', /must be a JSON object, got a decimal envelope/],
    ['{"status": 5}', /status must be a string, got a number/],
    ["{}", /has no status/],
    [
      '{"status": "FAILURE", "result": {"exc_message": ["x"], "exc_module": "m"}}',
      /^Exception information must include the exception type$/
    ],
    ['{"status": "FAILURE", "result": "boom"}', /must be a dictionary/],
    ['{"status": "RETRY", "result": [1]}', /must be a dictionary/],
    ['{"status": "FAILURE", "result": {"exc_type": 5}}', /exc_type must be a string/],
    ['{"status": "FAILURE", "result": {"exc_type": "E", "exc_module": 1}}', /exc_module must be a string/],
    ['{"status": "SUCCESS", "result": 1, "children": "x"}', /children must be a list or null/],
    ['{"status": "SUCCESS", "result": 1, "traceback": 5}', /traceback must be a string or null/],
    ['{"status": "SUCCESS", "result": 1, "date_done": 5}', /date_done must be/],
    ['{"status": "SUCCESS", "result": 1, "retries": "3"}', /extended field retries/],
    ['{"status": "SUCCESS", "result": 1, "args": {}}', /extended field args/],
    [
      '{"status": "SUCCESS", "result": {"__type__": "pickle", "__value__": "x"}}',
      /Invalid JSON: Unsupported envelope type "pickle"/
    ]
  ]

  it.effect("turns corrupt values into a DecodeError with id, head and a clear message", () =>
    Effect.sync(() => {
      for (const [raw, message] of corrupt) {
        const e = left(Meta.decodeTaskMeta("bad-id", raw))
        assert.instanceOf(e, DecodeError, raw)
        assert.strictEqual(e.id, "bad-id")
        assert.strictEqual(e.head, raw.slice(0, 100))
        assert.match(e.message, message, raw)
      }
      const long = `{"status": "SUCCESS", "result": "${"x".repeat(500)}"`
      assert.strictEqual(left(Meta.decodeTaskMeta("l", long)).head.length, 100)
    })
  )

  it.effect("where Celery itself fails on a corrupt value, so do we", () =>
    Effect.gen(function* () {
      const failing = corrupt
        .filter(([raw]) => /exc_|FAILURE|RETRY|^\[|^$|Expecting|\{\}$/.test(raw))
        .map(([raw]) => raw)
      const replies = yield* oracle(failing.map((text) => ({ op: "decode_meta", text })))
      failing.forEach((raw, i) => {
        const py = replies[i]!
        // Celery 5.2 accepts a non-string exc_type/exc_module by accident of getattr; all else fails.
        if (/exc_type": 5|exc_module": 1/.test(raw)) return
        assert.property(py, "error", raw)
      })
      assert.strictEqual(
        replies[failing.findIndex((r) => r.includes('"exc_message": ["x"], "exc_module": "m"'))]!["error"],
        "ValueError: Exception information must includethe exception type"
      )
    })
  )

  it.effect("never throws, whatever the bytes (property)", () =>
    Effect.sync(() => {
      const valid = cases.map((c, i) => Meta.encodeTaskMeta(makeMeta(c, `p-${i}`)))
      const mutated = fc
        .tuple(fc.constantFrom(...valid), fc.nat(), fc.nat({ max: 40 }), fc.string({ unit: "binary", maxLength: 6 }))
        .map(([t, at, del, ins]) => {
          const p = at % (t.length + 1)
          return t.slice(0, p) + ins + t.slice(p + del)
        })
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: "binary" }), mutated, fc.json()), (raw) => {
          const r = Meta.decodeTaskMeta("x", raw)
          if (Either.isLeft(r)) {
            assert.instanceOf(r.left, DecodeError)
            assert.strictEqual(r.left.head, raw.slice(0, 100))
          } else {
            assert.isString(Meta.encodeTaskMeta(r.right))
          }
          assert.isTrue(Either.isEither(Meta.decodeGroupMeta("g", raw)))
          assert.isTrue(Either.isEither(Meta.decodeChordMember("g", raw)))
        }),
        { numRuns: 1500 }
      )
    })
  )
})

describe("Meta encoders never throw", () => {
  it.effect("an unencodable result is a stand-in for encodeTaskMeta and an error for encodeTaskMetaEither", () =>
    Effect.sync(() => {
      const cyclic: Array<unknown> = [1]
      cyclic.push(cyclic)
      const meta = Meta.make({
        taskId: "u",
        state: "SUCCESS",
        result: { f: () => 1, c: cyclic },
        now: NOW,
        dateStyle: "naive"
      })
      const bytes = Meta.encodeTaskMeta(meta)
      assert.strictEqual(
        bytes,
        '{"status": "SUCCESS", "result": {"f": "<function f>", "c": [1, "<circular reference>"]}, "traceback": null, "children": null, "date_done": "2025-11-22T13:47:04.963000", "task_id": "u"}'
      )
      assert.match(left(Meta.encodeTaskMetaEither(meta)).message, /function is not JSON serializable/)
      assert.isString(Meta.encodeChordMember("t", "SUCCESS", Symbol("s")))
      const undefinedResult = Meta.make({
        taskId: "u",
        state: "SUCCESS",
        result: undefined,
        now: NOW,
        dateStyle: "naive"
      })
      assert.isNull(undefinedResult.result)
    })
  )
})

describe("Meta schemas", () => {
  const raw =
    '{"status": "SUCCESS", "result": {"charged": 42, "note": "caf\\u00e9"}, "traceback": null, "children": [], "date_done": "2026-11-22T13:50:36.972810", "task_id": "sch-1"}'

  it.effect("TaskMetaFromJson decodes and encodes Celery bytes", () =>
    Effect.gen(function* () {
      const meta = yield* Schema.decode(Meta.TaskMetaFromJson)(raw)
      assert.strictEqual(meta.taskId, "sch-1")
      assert.deepStrictEqual(meta.result, { charged: 42, note: "caf\u00e9" })
      assert.strictEqual(yield* Schema.encode(Meta.TaskMetaFromJson)(meta), raw)
      const named = yield* Schema.decode(Meta.taskMetaFromJson("other"))(raw)
      assert.strictEqual(named.taskId, "other")
      const noId = yield* Effect.exit(Schema.decode(Meta.TaskMetaFromJson)('{"status": "SUCCESS", "result": 1}'))
      assert.isTrue(Exit.isFailure(noId))
      const corrupt = yield* Effect.flip(Schema.decode(Meta.TaskMetaFromJson)("[]"))
      assert.match(corrupt.message, /must be a JSON object/)
      const unencodable = yield* Effect.flip(Schema.encode(Meta.TaskMetaFromJson)({ ...meta, result: () => 1 }))
      assert.match(unencodable.message, /not JSON serializable/)
    })
  )

  it.effect("decodeResult applies a caller Schema to the result, failing with DecodeError", () =>
    Effect.gen(function* () {
      const meta = right(Meta.decodeTaskMeta("sch-2", raw))
      const Charge = Schema.Struct({ charged: Schema.Number, note: Schema.String })
      assert.deepStrictEqual(yield* Meta.decodeResult(meta, Charge), { charged: 42, note: "caf\u00e9" })
      const e = yield* Effect.flip(Meta.decodeResult(meta, Schema.Struct({ charged: Schema.String })))
      assert.instanceOf(e, DecodeError)
      assert.strictEqual(e.id, "sch-2")
      assert.match(e.message, /charged/)
      assert.strictEqual(e.head, '{"charged": 42, "note": "caf\\u00e9"}')
    })
  )
})

describe("Meta.make", () => {
  it.effect("builds the fields in Celery's order with the documented defaults", () =>
    Effect.sync(() => {
      const m = Meta.make({
        taskId: "k",
        state: "SUCCESS",
        result: 1,
        request: { group: "g", parentId: "p", children: [ref("c")] },
        resultExtended: true,
        now: NOW,
        dateStyle: "offset"
      })
      expect(m).toStrictEqual({
        taskId: "k",
        status: "SUCCESS",
        result: 1,
        traceback: null,
        children: [[["c", null], null]],
        dateDone: "2025-11-22T13:47:04.963000+00:00",
        groupId: "g",
        parentId: "p",
        extended: { name: null, args: null, kwargs: null, worker: null, retries: 0, queue: null }
      })
      assert.strictEqual(
        Meta.encodeTaskMeta(m),
        '{"status": "SUCCESS", "result": 1, "traceback": null, "children": [[["c", null], null]], "date_done": "2025-11-22T13:47:04.963000+00:00", "group_id": "g", "parent_id": "p", "name": null, "args": null, "kwargs": null, "worker": null, "retries": 0, "queue": null, "task_id": "k"}'
      )
      const extra = Meta.encodeTaskMeta({ ...Meta.pending("e"), extra: { stamped_headers: ["a"], a: 1 } })
      assert.strictEqual(
        extra,
        '{"status": "PENDING", "result": null, "traceback": null, "children": null, "date_done": null, "stamped_headers": ["a"], "a": 1, "task_id": "e"}'
      )
    })
  )
})
