import * as TaskState from "@effect-celery/core/TaskState"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { pythonJson } from "../../../test-support/Python.js"

const STATES = [
  "PENDING",
  "RECEIVED",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "REJECTED",
  "RETRY",
  "IGNORED",
  "PROGRESS",
  "CUSTOM",
  "",
  "success",
  "None"
]

// Celery's own answers (system python, Celery 5.2.6). Fails, never skips, without celery.
const PY = `
import json, sys
from celery import states
S = json.loads(sys.argv[1])
print(json.dumps({
  "sets": {k: sorted(getattr(states, k)) for k in ["READY_STATES", "UNREADY_STATES", "EXCEPTION_STATES", "PROPAGATE_STATES", "ALL_STATES"]},
  "constants": {k: getattr(states, k) for k in ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "REVOKED", "REJECTED", "RETRY", "IGNORED"]},
  "precedence": [states.precedence(s) for s in S],
  "gt": [[states.state(a) > states.state(b) for b in S] for a in S],
  "ge": [[states.state(a) >= states.state(b) for b in S] for a in S],
  "lt": [[states.state(a) < states.state(b) for b in S] for a in S],
  "sorted": sorted(S, key=states.precedence),
}))
`

interface Reference {
  readonly sets: Record<string, ReadonlyArray<string>>
  readonly constants: Record<string, string>
  readonly precedence: ReadonlyArray<number>
  readonly gt: ReadonlyArray<ReadonlyArray<boolean>>
  readonly ge: ReadonlyArray<ReadonlyArray<boolean>>
  readonly lt: ReadonlyArray<ReadonlyArray<boolean>>
  readonly sorted: ReadonlyArray<string>
}

const reference = pythonJson<Reference>({ code: PY }, { args: [JSON.stringify(STATES)] })

const sorted = (s: ReadonlySet<string>) => [...s].sort()

describe("TaskState", () => {
  it.effect("the sets, as the spec lists them", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(sorted(TaskState.READY_STATES), ["FAILURE", "REVOKED", "SUCCESS"])
      assert.deepStrictEqual(sorted(TaskState.UNREADY_STATES), ["PENDING", "RECEIVED", "REJECTED", "RETRY", "STARTED"])
      assert.deepStrictEqual(sorted(TaskState.EXCEPTION_STATES), ["FAILURE", "RETRY", "REVOKED"])
      assert.deepStrictEqual(sorted(TaskState.PROPAGATE_STATES), ["FAILURE", "REVOKED"])
      assert.deepStrictEqual(sorted(TaskState.ALL_STATES), [
        "FAILURE",
        "PENDING",
        "RECEIVED",
        "RETRY",
        "REVOKED",
        "STARTED",
        "SUCCESS"
      ])
      assert.isTrue(TaskState.isReady("SUCCESS"))
      assert.isFalse(TaskState.isReady("STARTED"))
      assert.isFalse(TaskState.isReady("PROGRESS"))
      assert.isTrue(TaskState.isException("RETRY"))
      assert.isFalse(TaskState.isException("SUCCESS"))
      assert.isTrue(TaskState.isPropagate("REVOKED"))
      assert.isFalse(TaskState.isPropagate("RETRY"))
    })
  )

  it.effect("precedence: SUCCESS, FAILURE, custom states, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING", () =>
    Effect.sync(() => {
      const order = ["PENDING", "PROGRESS", "RETRY", "SUCCESS", "REJECTED", "STARTED", "FAILURE", "RECEIVED", "REVOKED"]
      assert.deepStrictEqual([...order].sort(TaskState.compare), [
        "SUCCESS",
        "FAILURE",
        "PROGRESS",
        "REVOKED",
        "STARTED",
        "RECEIVED",
        "REJECTED",
        "RETRY",
        "PENDING"
      ])
      // Custom states (and IGNORED, which Celery does not rank) sit between FAILURE and REVOKED.
      for (const custom of ["PROGRESS", "IGNORED", "anything"]) {
        assert.isTrue(TaskState.greaterThan(custom, "REVOKED"))
        assert.isTrue(TaskState.greaterThan("FAILURE", custom))
        assert.isFalse(TaskState.greaterThan(custom, "FAILURE"))
        assert.strictEqual(TaskState.compare(custom, "PROGRESS"), 0)
      }
      assert.isTrue(TaskState.greaterThan("SUCCESS", "PENDING"))
      assert.isFalse(TaskState.greaterThan("PENDING", "PENDING"))
      assert.strictEqual(TaskState.compare("PENDING", "SUCCESS"), 1)
      assert.strictEqual(TaskState.compare("SUCCESS", "PENDING"), -1)
    })
  )

  it.effect("agrees with celery.states (precedence, state comparisons, sets)", () =>
    Effect.gen(function* () {
      const ref = yield* reference
      assert.deepStrictEqual(STATES.map(TaskState.precedence), ref.precedence)
      STATES.forEach((a, i) =>
        STATES.forEach((b, j) => {
          const pair = `${JSON.stringify(a)} vs ${JSON.stringify(b)}`
          assert.strictEqual(TaskState.greaterThan(a, b), ref.gt[i]![j], `> ${pair}`)
          assert.strictEqual(TaskState.greaterThan(b, a), ref.lt[i]![j], `< ${pair}`)
          assert.strictEqual(TaskState.compare(a, b) <= 0, ref.ge[i]![j], `>= ${pair}`)
        })
      )
      // Both sorts are stable, so equal precedence keeps the input order in each.
      assert.deepStrictEqual([...STATES].sort(TaskState.compare), ref.sorted)
      assert.deepStrictEqual(sorted(TaskState.READY_STATES), ref.sets["READY_STATES"])
      assert.deepStrictEqual(sorted(TaskState.UNREADY_STATES), ref.sets["UNREADY_STATES"])
      assert.deepStrictEqual(sorted(TaskState.EXCEPTION_STATES), ref.sets["EXCEPTION_STATES"])
      assert.deepStrictEqual(sorted(TaskState.PROPAGATE_STATES), ref.sets["PROPAGATE_STATES"])
      assert.deepStrictEqual(sorted(TaskState.ALL_STATES), ref.sets["ALL_STATES"])
      assert.deepStrictEqual(ref.constants, {
        PENDING: TaskState.PENDING,
        RECEIVED: TaskState.RECEIVED,
        STARTED: TaskState.STARTED,
        SUCCESS: TaskState.SUCCESS,
        FAILURE: TaskState.FAILURE,
        REVOKED: TaskState.REVOKED,
        REJECTED: TaskState.REJECTED,
        RETRY: TaskState.RETRY,
        IGNORED: TaskState.IGNORED
      })
    })
  )
})
