/**
 * Chords across languages: header parts reported partly by Celery (5.2.6 and 5.6.3)
 * (`backend.on_chord_part_return(request, state, result)` with a fake request; the body's `delay`
 * is recorded, not sent) and partly by TypeScript (`onChordPartReturn`), in ordered (ZSET) and
 * unordered (LIST) `.j` modes. The chord completes exactly once, on whichever side reports last,
 * with the results in header order; a failing part gives Celery's ChordError text on the body.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ChordError, RemoteException, TaskFailedError } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import type { ChordProgress } from "@effect-celery/core/ResultBackend"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { CELERY_VERSIONS } from "../../../../test-support/Celery.js"
import { HarnessError } from "../../../../test-support/RedisServer.js"
import * as InteropEnv from "./InteropEnv.js"

const { uid } = InteropEnv

/** Part i's result, on each side. */
const RESULTS_TS: ReadonlyArray<unknown> = [{ i: 0 }, 1.5, "two"]
const RESULTS_PY: ReadonlyArray<string> = ["{'i': 0}", "1.5", "'two'"]
const JOINED_PY = "[{'i': 0}, 1.5, 'two']"

interface PyPart {
  readonly fired: ReadonlyArray<{ readonly task: string; readonly args_repr: string; readonly results_repr: string }>
  readonly chord_errors: ReadonlyArray<string>
}

const chordKeysLeft = (gid: string) =>
  Effect.flatMap(InteropEnv.InteropEnv, (env) =>
    Effect.tryPromise({
      try: () =>
        env.raw.exists([Keys.standard.chordJoin(gid), Keys.standard.chordSize(gid), Keys.standard.chordCounter(gid)]),
      catch: (cause) => new HarnessError({ message: "EXISTS", cause })
    })
  )

for (const version of CELERY_VERSIONS)
  for (const ordered of [true, false]) {
    const mode = ordered ? "ordered (ZSET)" : "unordered (LIST)"
    // Ordered mode reports out of header order (the ZSET score restores it); unordered mode keeps
    // completion order, so there the parts are reported in header order.
    const order = ordered ? [2, 0, 1] : [0, 1, 2]

    layer(
      InteropEnv.fullLayer(
        { worker: false, celery: version },
        { dateStyle: InteropEnv.dateStyleOf(version), chordOrdered: ordered }
      ),
      {
        excludeTestServices: true,
        timeout: "60 seconds"
      }
    )(`Celery ${version}: chords across languages, ${mode}`, (it) => {
      const setup = (label: string) =>
        Effect.gen(function* () {
          const env = yield* InteropEnv.InteropEnv
          const backend = yield* ResultBackend
          const gid = uid(label)
          const parts = [0, 1, 2].map((i) => `${gid}-${i}`)
          const bodyId = `${gid}-body`
          const body = { task: "interop.tsum", task_id: bodyId }
          const py = (i: number, state = "SUCCESS", resultPy = RESULTS_PY[i]!) =>
            env.python.call("chord_part", {
              gid,
              task_id: parts[i],
              group_index: i,
              state,
              result_py: resultPy,
              body,
              ordered
            }) as Effect.Effect<PyPart, HarnessError>
          const ts = (i: number, state = "SUCCESS", result: unknown = RESULTS_TS[i]) =>
            backend.onChordPartReturn(
              { groupId: gid, taskId: parts[i]!, groupIndex: i, bodyTaskId: bodyId },
              state,
              result
            )
          return { env, backend, gid, parts, bodyId, py, ts }
        })

      it.scoped("Python reports the last part: its body fires once with the results in header order", () =>
        Effect.gen(function* () {
          const { backend, gid, py, ts } = yield* setup("chord-py-last")
          yield* backend.setChordSize(gid, 3)
          const [first, second, last] = order as [number, number, number]
          const progress = yield* ts(first)
          assert.strictEqual(progress._tag, "Pending")
          assert.deepStrictEqual(yield* py(second), { fired: [], chord_errors: [] })
          const fired = yield* py(last)
          assert.deepStrictEqual(fired, {
            fired: [{ task: "interop.tsum", args_repr: `(${JOINED_PY},)`, results_repr: JOINED_PY }],
            chord_errors: []
          } satisfies PyPart)
          assert.strictEqual(yield* chordKeysLeft(gid), 0)
          // A redelivered part after completion fires nothing, on either side.
          assert.deepStrictEqual(yield* py(last), { fired: [], chord_errors: [] })
          assert.strictEqual((yield* ts(last))._tag, "Pending")
        })
      )

      it.scoped("TypeScript reports the last part: Complete exactly once, results in header order", () =>
        Effect.gen(function* () {
          const { env, gid, py, ts } = yield* setup("chord-ts-last")
          yield* env.python.call("set_chord_size", { gid, size: 3 })
          const [first, second, last] = order as [number, number, number]
          assert.deepStrictEqual(yield* py(first), { fired: [], chord_errors: [] })
          assert.strictEqual((yield* ts(second))._tag, "Pending")
          const complete = yield* ts(last)
          assert.deepStrictEqual(complete, { _tag: "Complete", results: RESULTS_TS } satisfies ChordProgress)
          assert.strictEqual(yield* chordKeysLeft(gid), 0)
          assert.deepStrictEqual(yield* py(last), { fired: [], chord_errors: [] })
          assert.strictEqual((yield* ts(last))._tag, "Pending")
        })
      )

      if (!ordered) {
        it.scoped("unordered: both sides join in completion order, as Celery's LRANGE does", () =>
          Effect.gen(function* () {
            const a = yield* setup("chord-lrange-ts")
            yield* a.backend.setChordSize(a.gid, 3)
            yield* a.ts(2)
            yield* a.py(0)
            assert.deepStrictEqual(yield* a.ts(1), {
              _tag: "Complete",
              results: [RESULTS_TS[2], RESULTS_TS[0], RESULTS_TS[1]]
            } satisfies ChordProgress)

            const b = yield* setup("chord-lrange-py")
            yield* b.backend.setChordSize(b.gid, 3)
            yield* b.ts(2)
            yield* b.ts(0)
            const fired = yield* b.py(1)
            assert.deepStrictEqual(
              fired.fired.map((f) => f.results_repr),
              ["['two', {'i': 0}, 1.5]"]
            )
          })
        )
      }

      it.scoped(
        "a part failed in Python, TypeScript completes: ChordError with Celery's text, stored on the body",
        () =>
          Effect.gen(function* () {
            const { backend, bodyId, env, gid, parts, py, ts } = yield* setup("chord-py-fails")
            yield* backend.setChordSize(gid, 2)
            assert.deepStrictEqual(yield* py(0, "FAILURE", "PaymentError('x', 1)"), { fired: [], chord_errors: [] })
            const error = yield* Effect.flip(ts(1))
            const text = `Dependency ${parts[0]} raised PaymentError('x', 1)`
            assert.instanceOf(error, ChordError)
            assert.strictEqual(error.message, text)
            // Python reads the body's FAILURE as the ChordError Celery itself would have stored.
            const read = (yield* env.python.call("read", { task_id: bodyId })) as Record<string, unknown>
            assert.strictEqual(read["state"], "FAILURE")
            assert.deepStrictEqual(read["exception"], {
              exc_type: "ChordError",
              exc_module: "celery.exceptions",
              args_repr: `(${JSON.stringify(text)},)`,
              repr: `ChordError(${JSON.stringify(text)})`,
              str: text
            })
          })
      )

      it.scoped("a part failed in TypeScript, Python completes: the same ChordError, read by TypeScript", () =>
        Effect.gen(function* () {
          const { backend, bodyId, env, gid, parts, py, ts } = yield* setup("chord-ts-fails")
          yield* env.python.call("set_chord_size", { gid, size: 2 })
          const failed = new RemoteException({
            excType: "PaymentError",
            excMessage: ["x", 1],
            excModule: "interop_app"
          })
          assert.strictEqual((yield* ts(0, "FAILURE", failed))._tag, "Pending")
          const text = `Dependency ${parts[0]} raised PaymentError('x', 1)`
          assert.deepStrictEqual(yield* py(1), { fired: [], chord_errors: [`ChordError(${JSON.stringify(text)})`] })
          const error = yield* Effect.flip(backend.waitFor(bodyId, { timeout: "5 seconds" }))
          assert.instanceOf(error, TaskFailedError)
          if (!(error instanceof TaskFailedError)) return
          assert.deepStrictEqual(
            error.exception,
            new RemoteException({ excType: "ChordError", excMessage: [text], excModule: "celery.exceptions" })
          )
        })
      )
    })
  }
