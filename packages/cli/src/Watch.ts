/**
 * `result watch`: every state change of the watched tasks from `ResultConsumer.watch` (which holds
 * the Pub/Sub subscriptions exactly as long as the stream runs, so Ctrl-C releases them).
 *
 * On a terminal it is a live table (counts per state, a progress bar, the tasks last changed
 * first), redrawn in place at most every `REDRAW` and never wider than the terminal, so the cursor
 * arithmetic holds. When stdout is not a terminal, or with `--json`, it is one line per change.
 */
import * as Terminal from "@effect/platform/Terminal"
import type { DecodeError } from "@effect-celery/core/Errors"
import type { TaskMeta } from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import * as TaskState from "@effect-celery/core/TaskState"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as ExitCode from "./ExitCode.js"
import * as Render from "./Render.js"

/** Longest time between a change and the redraw that shows it. */
export const REDRAW = Duration.millis(80)

export interface WatchArgs {
  readonly ids: ReadonlyArray<string>
  readonly group: string | undefined
  readonly json: boolean
  readonly timeout: Duration.Duration | undefined
}

type Item = Either.Either<TaskMeta, DecodeError>

interface Row {
  meta: TaskMeta | undefined
  error: DecodeError | undefined
  /** Order of the last change (higher = more recent). */
  seq: number
}

const stateOf = (row: Row): string => (row.error !== undefined ? "UNDECODABLE" : (row.meta?.status ?? "…"))

/** `HH:MM:SS.mmm` (UTC), the time a change was seen. */
const clockText = (millis: number): string => new Date(millis).toISOString().slice(11, 23)

const cut = (text: string, width: number): string =>
  text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text

/** The lines of one frame of the live table. */
export const frame = (
  ids: ReadonlyArray<string>,
  rows: ReadonlyMap<string, Row>,
  elapsedMillis: number,
  size: { readonly columns: number; readonly rows: number }
): ReadonlyArray<string> => {
  const width = Math.max(20, size.columns - 1)
  const counts = new Map<string, number>()
  let ready = 0
  for (const id of ids) {
    const row = rows.get(id)
    const state = row === undefined ? TaskState.PENDING : stateOf(row)
    counts.set(state, (counts.get(state) ?? 0) + 1)
    if (TaskState.isReady(state) || state === "UNDECODABLE") ready++
  }
  const barWidth = Math.max(10, Math.min(40, width - 40))
  const filled = ids.length === 0 ? barWidth : Math.round((ready / ids.length) * barWidth)
  const bar = `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}]`
  const lines = [
    cut(`${bar} ${ready}/${ids.length} ready  ${Render.durationText(elapsedMillis / 1000)}`, width),
    cut(
      [...counts.entries()]
        .sort(([a], [b]) => TaskState.compare(a, b))
        .map(([state, n]) => `${state} ${n}`)
        .join("  "),
      width
    )
  ]
  const room = Math.max(3, size.rows - lines.length - 2)
  const order = [...ids].sort((a, b) => (rows.get(b)?.seq ?? -1) - (rows.get(a)?.seq ?? -1))
  const idWidth = Math.min(Math.max(...ids.map((id) => id.length), 4), Math.max(12, width - 30))
  const shown = order.length > room ? order.slice(0, room - 1) : order
  for (const id of shown) {
    const row = rows.get(id)
    const state = row === undefined ? TaskState.PENDING : stateOf(row)
    const what =
      row?.error !== undefined ? row.error.message : row?.meta !== undefined ? Render.summary(row.meta, width) : ""
    lines.push(cut(`  ${cut(id, idWidth).padEnd(idWidth)}  ${state.padEnd(9)}  ${what}`, width))
  }
  if (shown.length < order.length) lines.push(`  … and ${order.length - shown.length} more`)
  return lines
}

/** The ids to watch: those given, then the members of `--group` (each once). */
const idsToWatch = (args: WatchArgs) =>
  Effect.gen(function* () {
    const ids = [...args.ids]
    if (args.group !== undefined) {
      const backend = yield* ResultBackend
      const group = yield* backend.restoreGroup(args.group)
      if (Option.isNone(group)) return Either.left(`no group ${args.group} stored (GroupResult.save() stores one)`)
      ids.push(...group.value.results.map((r) => r.id))
    }
    if (ids.length === 0) return Either.left("give task ids or --group")
    return Either.right([...new Set(ids)])
  })

export const run = (args: WatchArgs) =>
  Effect.gen(function* () {
    const chosen = yield* idsToWatch(args)
    if (Either.isLeft(chosen)) {
      yield* Console.error(`effect-celery: ${chosen.left}`)
      return args.group !== undefined && args.ids.length === 0 ? ExitCode.NOT_READY : ExitCode.USAGE
    }
    const ids = chosen.right
    const consumer = yield* ResultConsumer
    const terminal = yield* Terminal.Terminal
    const tty = !args.json && (yield* terminal.isTTY)
    const rows = new Map<string, Row>()
    let seq = 0
    const apply = (item: Item) => {
      const id = Either.isLeft(item) ? item.left.id : item.right.taskId
      rows.set(
        id,
        Either.isLeft(item)
          ? { meta: undefined, error: item.left, seq: seq++ }
          : { meta: item.right, error: undefined, seq: seq++ }
      )
    }
    // Ends like `wait`: when every task is ready or undecodable. (The consumer keeps following an
    // undecodable task, since a later store may fix it; an operator's watch would then never end.)
    const settled = () =>
      ids.every((id) => {
        const row = rows.get(id)
        return (
          row !== undefined && (row.error !== undefined || TaskState.isReady(row.meta?.status ?? TaskState.PENDING))
        )
      })
    const changes = consumer.watch(ids).pipe(
      Stream.tap((item) => Effect.sync(() => apply(item))),
      Stream.takeUntil(settled)
    )

    const asLines = changes.pipe(
      Stream.runForEach((item) =>
        Effect.gen(function* () {
          if (args.json) {
            return yield* Console.log(
              Either.match(item, { onLeft: Render.decodeErrorJson, onRight: (m) => Render.metaJson(m) })
            )
          }
          const now = clockText(yield* Clock.currentTimeMillis)
          const text = Either.match(item, {
            onLeft: (e) => `${e.id}  UNDECODABLE  ${e.message}`,
            onRight: (meta) => {
              const what = Render.summary(meta, 200)
              return `${meta.taskId}  ${meta.status}${what === "" ? "" : `  ${what}`}`
            }
          })
          yield* Console.log(`${now}  ${text}`)
        })
      )
    )

    const asTable = Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      let drawn = 0
      const draw = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const size = { columns: yield* terminal.columns, rows: yield* terminal.rows }
        const lines = frame(ids, rows, now - start, { columns: size.columns || 80, rows: size.rows || 24 })
        // Back to the first line of the previous frame, clear below, draw.
        const up = drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ""
        drawn = lines.length
        yield* terminal.display(`${up}${lines.join("\n")}\n`)
      })
      // Changes are applied as they come; a ticker redraws when something changed, so a burst of
      // changes costs one frame.
      let dirty = false
      const redraw = Effect.suspend(() => (dirty ? ((dirty = false), draw) : Effect.void))
      yield* terminal.display("\x1b[?25l") // hide the cursor while redrawing
      const ticker = yield* Effect.fork(Effect.repeat(redraw, Schedule.spaced(REDRAW)))
      yield* changes.pipe(
        Stream.runForEach(() =>
          Effect.sync(() => {
            dirty = true
          })
        ),
        Effect.zipRight(Fiber.interrupt(ticker)),
        Effect.zipRight(redraw),
        Effect.ensuring(Effect.zipRight(Fiber.interrupt(ticker), Effect.ignore(terminal.display("\x1b[?25h"))))
      )
    })

    const body = tty ? asTable : asLines
    const done =
      args.timeout === undefined ? yield* Effect.asSome(body) : yield* Effect.timeoutOption(body, args.timeout)
    if (Option.isNone(done)) {
      const waiting = ids.filter((id) => !TaskState.isReady(rows.get(id)?.meta?.status ?? TaskState.PENDING))
      yield* Console.error(`effect-celery: TimeoutError: --timeout elapsed; not ready: ${waiting.join(", ")}`)
      return ExitCode.TIMEOUT
    }
    if ([...rows.values()].some((r) => r.error !== undefined)) return ExitCode.BACKEND
    return ExitCode.ofStates(ids.map((id) => rows.get(id)?.meta?.status ?? TaskState.PENDING))
  })
