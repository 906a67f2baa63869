/**
 * The CLI's pure parts, in process: duration parsing, strict JSON from Celery's Python JSON, the
 * exit code of a set of states, and the live table's frame (never wider than the terminal).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import * as DurationOption from "@effect-celery/cli/DurationOption"
import * as ExitCode from "@effect-celery/cli/ExitCode"
import * as Render from "@effect-celery/cli/Render"
import * as Watch from "@effect-celery/cli/Watch"
import * as Meta from "@effect-celery/core/Meta"

describe("DurationOption.parse", () => {
  it("reads units, combinations and bare seconds; rejects the rest", () => {
    const millis = (t: string) => Option.map(DurationOption.parse(t), Duration.toMillis)
    assert.deepStrictEqual(millis("500ms"), Option.some(500))
    assert.deepStrictEqual(millis("30s"), Option.some(30_000))
    assert.deepStrictEqual(millis("1h30m"), Option.some(5_400_000))
    assert.deepStrictEqual(millis("1d"), Option.some(86_400_000))
    assert.deepStrictEqual(millis("2.5"), Option.some(2500))
    for (const bad of ["", "s", "5x", "1d garbage", "-1s"]) assert.isTrue(Option.isNone(DurationOption.parse(bad)), bad)
  })
})

describe("Render.strictJson", () => {
  it("quotes Python's NaN/Infinity outside strings and leaves strings and big integers alone", () => {
    const py = '{"a": [NaN, Infinity, -Infinity, 1180591620717411303424], "s": "NaN \\"Infinity\\" -Infinity"}'
    const strict = Render.strictJson(py)
    assert.strictEqual(strict, '{"a": ["NaN", "Infinity", "-Infinity", 1180591620717411303424], "s": "NaN \\"Infinity\\" -Infinity"}')
    assert.deepStrictEqual(JSON.parse(strict).s, 'NaN "Infinity" -Infinity')
  })
})

describe("ExitCode.ofStates", () => {
  it("FAILURE/REVOKED over not ready over SUCCESS", () => {
    assert.strictEqual(ExitCode.ofStates([]), ExitCode.OK)
    assert.strictEqual(ExitCode.ofStates(["SUCCESS", "SUCCESS"]), ExitCode.OK)
    assert.strictEqual(ExitCode.ofStates(["SUCCESS", "PROGRESS"]), ExitCode.NOT_READY)
    assert.strictEqual(ExitCode.ofStates(["PENDING", "REVOKED", "SUCCESS"]), ExitCode.FAILED)
    assert.strictEqual(ExitCode.ofStates(["FAILURE"]), ExitCode.FAILED)
  })
})

describe("Watch.frame", () => {
  it("fits the terminal: no line wider than the columns, rows beyond the height summarized", () => {
    const ids = Array.from({ length: 50 }, (_, i) => `task-${i}-${"x".repeat(40)}`)
    const rows = new Map(
      ids.slice(0, 10).map((id, i) => [
        id,
        { meta: Meta.make({ taskId: id, state: "PROGRESS", result: { current: i, note: "y".repeat(200) }, now: 0, dateStyle: "offset" }), error: undefined, seq: i }
      ])
    )
    const lines = Watch.frame(ids, rows, 61_000, { columns: 60, rows: 12 })
    assert.isAtMost(lines.length, 12)
    for (const l of lines) assert.isAtMost(l.length, 59, l)
    assert.include(lines[0], "0/50 ready  1m 1s")
    assert.strictEqual(lines[1], "PROGRESS 10  PENDING 40")
    assert.match(lines.at(-1)!, /… and \d+ more/)
    assert.include(lines[2], "task-9-", "the last changed first")
  })
})
