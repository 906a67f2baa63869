/**
 * The CLI in process: every command's --help, duration parsing, strict JSON from Celery's Python
 * JSON, the exit code of a set of states, and the live table's frame (never wider than the terminal).
 */
import * as Fs from "node:fs"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import type { Console } from "effect"
import { Duration, Effect, Option } from "effect"
import * as Admin from "@effect-celery/cli/Admin"
import * as Cli from "@effect-celery/cli/Cli"
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
    assert.strictEqual(
      strict,
      '{"a": ["NaN", "Infinity", "-Infinity", 1180591620717411303424], "s": "NaN \\"Infinity\\" -Infinity"}'
    )
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
        {
          meta: Meta.make({
            taskId: id,
            state: "PROGRESS",
            result: { current: i, note: "y".repeat(200) },
            now: 0,
            dateStyle: "offset"
          }),
          error: undefined,
          seq: i
        }
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

/** Run with Console.log/error captured. */
const captured = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const base = yield* Effect.console
    const out: Array<string> = []
    const push = (...args: ReadonlyArray<unknown>) => void out.push(args.map(String).join(" "))
    const console: Console.Console = {
      ...base,
      log: (...args) => Effect.sync(() => push(...args)),
      error: (...args) => Effect.sync(() => push(...args)),
      unsafe: { ...base.unsafe, log: push, error: push }
    }
    const value = yield* Effect.withConsole(self, console)
    return [value, out.join("\n")] as const
  })

describe("--help", () => {
  const commands = [
    [],
    ["result"],
    ["result", "get"],
    ["result", "wait"],
    ["result", "watch"],
    ["result", "forget"],
    ["result", "exists"],
    ["result", "inspect"],
    ["group", "show"],
    ["chord", "show"],
    ["results", "ls"],
    ["results", "stats"],
    ["results", "expire"],
    ["doctor"]
  ]
  it.effect("every command has help listing its options and the exit codes, exit 0", () =>
    Effect.gen(function* () {
      for (const command of commands) {
        const [code, text] = yield* captured(Cli.run(["node", "effect-celery", ...command, "--help"]))
        const name = command.join(" ") || "effect-celery"
        assert.strictEqual(code, 0, name)
        assert.include(text, "USAGE", name)
        assert.include(text, "EXIT CODES", name)
        if (command.length === 2) assert.include(text, "--url", name)
      }
    }).pipe(Effect.provide(NodeContext.layer))
  )
})

describe("--version", () => {
  it("is the package's version", () => {
    const manifest = JSON.parse(Fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string
    }
    assert.strictEqual(Cli.VERSION, manifest.version)
  })
})

describe("Admin.prefixPattern", () => {
  it("matches the prefix literally (glob characters escaped), then anything", () => {
    assert.strictEqual(Admin.prefixPattern("celery-task-meta-"), "celery-task-meta-*")
    assert.strictEqual(Admin.prefixPattern("app[1]*?\\:"), "app\\[1\\]\\*\\?\\\\:*")
  })
})
