/**
 * `effect-celery group show` and `chord show`: a saved group's members and their states, and a
 * chord's progress as its join keys record it (`.j` parts done, `.s` size, `.t` extra parts).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import type { ChordMember } from "@effect-celery/core/Meta"
import * as Meta from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as TaskState from "@effect-celery/core/TaskState"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Admin from "./Admin.js"
import * as Connection from "./Connection.js"
import * as ExitCode from "./ExitCode.js"
import * as Render from "./Render.js"
import { json, line } from "./ResultCommands.js"
import { withBackend } from "./Run.js"

const groupId = Args.text({ name: "group-id" }).pipe(Args.withDescription("Celery group id (GroupResult.id)"))

const countsText = (states: ReadonlyArray<string>): string => {
  const counts = new Map<string, number>()
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts.entries()]
    .sort(([a], [b]) => TaskState.compare(a, b))
    .map(([s, n]) => `${s} ${n}`)
    .join("  ")
}

const countsJson = (states: ReadonlyArray<string>): string => {
  const counts: Record<string, number> = {}
  for (const s of states) counts[s] = (counts[s] ?? 0) + 1
  return JSON.stringify(counts)
}

const show = Command.make("show", { ...Connection.options, groupId, json }, (args) =>
  withBackend(args, () =>
    Effect.gen(function* () {
      const backend = yield* ResultBackend
      const group = yield* backend.restoreGroup(args.groupId)
      if (Option.isNone(group)) {
        yield* Console.error(`effect-celery: no group ${args.groupId} stored (GroupResult.save() stores one)`)
        return ExitCode.NOT_READY
      }
      const ids = group.value.results.map((r) => r.id)
      const metas = yield* Effect.forEach(ids, backend.get, { concurrency: "unbounded" })
      const states = metas.map((m) => m.status)
      if (args.json) {
        yield* Console.log(
          Render.jsonObject([
            ["group_id", JSON.stringify(args.groupId)],
            ["size", String(ids.length)],
            ["counts", countsJson(states)],
            ["members", `[${metas.map((m) => Render.metaJson(m)).join(", ")}]`]
          ])
        )
      } else {
        yield* Console.log(`group ${args.groupId}: ${ids.length} members  ${countsText(states)}`)
        for (const meta of metas) yield* Console.log(`  ${line(meta)}`)
      }
      return ExitCode.ofStates(states)
    })
  )
).pipe(
  Command.withDescription(
    "A saved group's members and their states. Exit codes as for result get; 3 when no group is stored."
  )
)

/** A chord as its keys show it. */
interface ChordView {
  readonly size: number | undefined
  readonly extra: number
  readonly done: ReadonlyArray<ChordMember>
  readonly undecodable: number
  readonly ttl: { readonly join: number; readonly size: number; readonly extra: number }
  readonly members: ReadonlyArray<string> | undefined
}

const status = (v: ChordView): "gone" | "stuck" | "in progress" => {
  if (v.ttl.join === -2 && v.ttl.size === -2 && v.ttl.extra === -2) return "gone"
  const expected = v.size === undefined ? undefined : v.size + v.extra
  return expected !== undefined && v.done.length + v.undecodable >= expected ? "stuck" : "in progress"
}

const chordShow = Command.make("show", { ...Connection.options, groupId, json }, (args) =>
  withBackend(args, (resolved) =>
    Effect.gen(function* () {
      const backend = yield* ResultBackend
      const keys = resolved.keys
      const [joinKey, sizeKey, extraKey] = [
        keys.chordJoin(args.groupId),
        keys.chordSize(args.groupId),
        keys.chordCounter(args.groupId)
      ]
      const [raw, [size, extra], ttls, group] = yield* Effect.all([
        Admin.chordMembers(joinKey),
        Admin.mget([sizeKey, extraKey]),
        Admin.ttls([joinKey, sizeKey, extraKey]),
        backend.restoreGroup(args.groupId)
      ])
      const decoded = raw.map((r) => Meta.decodeChordMember(args.groupId, r))
      const done = decoded.filter(Either.isRight).map((d) => d.right)
      const view: ChordView = {
        size: size === null || size === undefined ? undefined : Number(size),
        extra: extra === null || extra === undefined ? 0 : Number(extra),
        done,
        undecodable: decoded.length - done.length,
        ttl: { join: ttls[0] ?? -2, size: ttls[1] ?? -2, extra: ttls[2] ?? -2 },
        members: Option.match(group, { onNone: () => undefined, onSome: (g) => g.results.map((r) => r.id) })
      }
      const doneIds = new Set(done.map((m) => m.taskId))
      const missing = view.members?.filter((id) => !doneIds.has(id))
      const expected = view.size === undefined ? undefined : view.size + view.extra
      const st = status(view)
      const failed = done.filter((m) => TaskState.isPropagate(m.state))
      if (args.json) {
        yield* Console.log(
          Render.jsonObject([
            ["group_id", JSON.stringify(args.groupId)],
            ["status", JSON.stringify(st)],
            ["done", String(done.length + view.undecodable)],
            ["expected", expected === undefined ? "null" : String(expected)],
            ["size", view.size === undefined ? "null" : String(view.size)],
            ["extra", String(view.extra)],
            [
              "parts",
              `[${done
                .map((m) =>
                  Render.jsonObject([
                    ["task_id", JSON.stringify(m.taskId)],
                    ["state", JSON.stringify(m.state)],
                    ["result", Render.json(m.result)]
                  ])
                )
                .join(", ")}]`
            ],
            ["missing", missing === undefined ? "null" : JSON.stringify(missing)],
            ["ttl", JSON.stringify({ [joinKey]: view.ttl.join, [sizeKey]: view.ttl.size, [extraKey]: view.ttl.extra })]
          ])
        )
      } else if (st === "gone") {
        yield* Console.log(
          `chord ${args.groupId}: no chord keys (complete, since the last part deletes them, or never started on this backend)`
        )
      } else {
        yield* Console.log(
          `chord ${args.groupId}: ${st}  ${done.length + view.undecodable}/${expected ?? "?"} parts done${failed.length > 0 ? `, ${failed.length} failed` : ""}`
        )
        if (st === "stuck")
          yield* Console.log("  every part is done but the chord keys remain: the body was never triggered")
        for (const m of done) yield* Console.log(`  done     ${m.taskId}  ${m.state}  ${Render.pretty(m.result)}`)
        if (missing !== undefined) for (const id of missing) yield* Console.log(`  missing  ${id}`)
        else yield* Console.log("  (no saved group: the missing members cannot be named)")
        const ttlLine = (k: string, t: number) => `  ttl      ${k}  ${Render.ttlText(t)}`
        yield* Console.log(ttlLine(joinKey, view.ttl.join))
        yield* Console.log(ttlLine(sizeKey, view.ttl.size))
        if (view.ttl.extra !== -2) yield* Console.log(ttlLine(extraKey, view.ttl.extra))
      }
      return st === "stuck" ? ExitCode.FAILED : st === "in progress" ? ExitCode.NOT_READY : ExitCode.OK
    })
  )
).pipe(
  Command.withDescription(
    `A chord's header progress: parts done vs expected, missing members, TTLs. Exit ${ExitCode.OK} when its keys are gone (complete), ${ExitCode.NOT_READY} in progress, ${ExitCode.FAILED} when stuck (every part done, keys still there).`
  )
)

export const group = Command.make("group").pipe(
  Command.withDescription("Saved groups (GroupResult.save)."),
  Command.withSubcommands([show])
)

export const chord = Command.make("chord").pipe(
  Command.withDescription("Chords in progress on the Redis backend."),
  Command.withSubcommands([chordShow])
)
