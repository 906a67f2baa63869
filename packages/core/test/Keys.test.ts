import * as Keys from "@effect-celery/core/Keys"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { pythonJson } from "../../../test-support/Python.js"

const IDS = ["a1b2c3d4-0000-4000-8000-000000000001", "g1", "caf\u00e9-\u{1F600}", "with space", "x.j"]

// The key layout of a real Celery 5.2.6 RedisBackend (keys are bytes there; utf-8 like node-redis).
const PY = `
import json, sys
from celery import Celery
from celery.backends.redis import RedisBackend
b = RedisBackend(app=Celery(set_as_current=False), url="redis://127.0.0.1:1/0")
ids = json.loads(sys.argv[1])
d = lambda k: k.decode("utf-8")
print(json.dumps({
  "task": [d(b.get_key_for_task(i)) for i in ids],
  "group": [d(b.get_key_for_group(i)) for i in ids],
  "j": [d(b.get_key_for_group(i, ".j")) for i in ids],
  "t": [d(b.get_key_for_group(i, ".t")) for i in ids],
  "s": [d(b.get_key_for_group(i, ".s")) for i in ids],
  "strip": [b._strip_prefix(b.get_key_for_task(i)) for i in ids],
  "prefixes": [d(b.task_keyprefix), d(b.group_keyprefix)],
}))
`

interface Reference {
  readonly task: ReadonlyArray<string>
  readonly group: ReadonlyArray<string>
  readonly j: ReadonlyArray<string>
  readonly t: ReadonlyArray<string>
  readonly s: ReadonlyArray<string>
  readonly strip: ReadonlyArray<string>
  readonly prefixes: ReadonlyArray<string>
}

const reference = pythonJson<Reference>({ code: PY }, { args: [JSON.stringify(IDS)] })

describe("Keys", () => {
  it.effect("the standard layout", () =>
    Effect.sync(() => {
      const k = Keys.standard
      assert.strictEqual(k.taskKeyprefix, "celery-task-meta-")
      assert.strictEqual(k.groupKeyprefix, "celery-taskset-meta-")
      assert.strictEqual(k.task("t1"), "celery-task-meta-t1")
      assert.strictEqual(k.group("g1"), "celery-taskset-meta-g1")
      assert.strictEqual(k.chordJoin("g1"), "celery-taskset-meta-g1.j")
      assert.strictEqual(k.chordCounter("g1"), "celery-taskset-meta-g1.t")
      assert.strictEqual(k.chordSize("g1"), "celery-taskset-meta-g1.s")
      assert.strictEqual(Keys.make().task("t1"), k.task("t1"))
      assert.strictEqual(Keys.make().groupKeyprefix, k.groupKeyprefix)
      assert.strictEqual(Keys.make({ globalKeyprefix: "" }).task("t1"), "celery-task-meta-t1")
    })
  )

  it.effect("agrees with Celery 5.2.6's RedisBackend key functions", () =>
    Effect.gen(function* () {
      const ref = yield* reference
      const k = Keys.standard
      assert.deepStrictEqual([k.taskKeyprefix, k.groupKeyprefix], ref.prefixes)
      assert.deepStrictEqual(IDS.map(k.task), ref.task)
      assert.deepStrictEqual(IDS.map(k.group), ref.group)
      assert.deepStrictEqual(IDS.map(k.chordJoin), ref.j)
      assert.deepStrictEqual(IDS.map(k.chordCounter), ref.t)
      assert.deepStrictEqual(IDS.map(k.chordSize), ref.s)
      // For task keys taskIdOf is Celery's _strip_prefix.
      assert.deepStrictEqual(ref.task.map(k.taskIdOf), [...ref.strip])
    })
  )

  it.effect("global_keyprefix, Celery >= 5.5: '_' only when the prefix does not end in : _ - .", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["p", "p_"],
        ["p_", "p_"],
        ["p:", "p:"],
        ["p-", "p-"],
        ["p.", "p."],
        ["app/", "app/_"],
        ["a:b", "a:b_"],
        ["_", "_"],
        ["p__", "p__"]
      ]
      for (const [prefix, expected] of cases) {
        assert.strictEqual(Keys.globalPrefix({ globalKeyprefix: prefix }), expected, prefix)
        assert.strictEqual(Keys.globalPrefix({ globalKeyprefix: prefix, separatorEra: "5.5" }), expected, prefix)
        const k = Keys.make({ globalKeyprefix: prefix })
        assert.strictEqual(k.task("t1"), `${expected}celery-task-meta-t1`)
        assert.strictEqual(k.group("g1"), `${expected}celery-taskset-meta-g1`)
        assert.strictEqual(k.chordJoin("g1"), `${expected}celery-taskset-meta-g1.j`)
        assert.strictEqual(k.chordCounter("g1"), `${expected}celery-taskset-meta-g1.t`)
        assert.strictEqual(k.chordSize("g1"), `${expected}celery-taskset-meta-g1.s`)
      }
      assert.strictEqual(Keys.globalPrefix({}), "")
      assert.strictEqual(Keys.globalPrefix({ globalKeyprefix: "" }), "")
    })
  )

  it.effect("global_keyprefix, Celery 5.3-5.4: always p + '_'", () =>
    Effect.sync(() => {
      for (const prefix of ["p", "p_", "p:", "p-", "p."]) {
        const k = Keys.make({ globalKeyprefix: prefix, separatorEra: "5.3" })
        assert.strictEqual(k.taskKeyprefix, `${prefix}_celery-task-meta-`)
        assert.strictEqual(k.task("t1"), `${prefix}_celery-task-meta-t1`)
        assert.strictEqual(k.chordSize("g1"), `${prefix}_celery-taskset-meta-g1.s`)
      }
      assert.strictEqual(Keys.globalPrefix({ globalKeyprefix: "", separatorEra: "5.3" }), "")
    })
  )

  it.effect("taskIdOf maps task keys (channels) back to ids, and nothing else", () =>
    Effect.sync(() => {
      const k = Keys.make({ globalKeyprefix: "tenant:" })
      assert.strictEqual(k.taskIdOf("tenant:celery-task-meta-abc"), "abc")
      assert.strictEqual(k.taskIdOf("tenant:celery-task-meta-"), "")
      assert.strictEqual(k.taskIdOf(k.task("caf\u00e9-\u{1F600}")), "caf\u00e9-\u{1F600}")
      assert.strictEqual(k.taskIdOf("celery-task-meta-abc"), undefined, "unprefixed key under a prefixed layout")
      assert.strictEqual(k.taskIdOf("tenant:celery-taskset-meta-g1"), undefined, "group key")
      assert.strictEqual(k.taskIdOf("other"), undefined)
      assert.strictEqual(Keys.standard.taskIdOf("tenant:celery-task-meta-abc"), undefined)
      for (const id of IDS) assert.strictEqual(Keys.standard.taskIdOf(Keys.standard.task(id)), id)
    })
  )
})
