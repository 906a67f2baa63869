/**
 * `effect-celery results …`: the result store as a whole, which nothing else inspects. Every
 * command walks the keys with SCAN (never KEYS, which blocks the server) and reads each batch with
 * one MGET and pipelined TTL / MEMORY USAGE, so a large store costs many short commands, not one
 * long one.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { TaskMeta } from "@effect-celery/core/Meta"
import * as Meta from "@effect-celery/core/Meta"
import * as TaskState from "@effect-celery/core/TaskState"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Admin from "./Admin.js"
import * as Connection from "./Connection.js"
import * as DurationOption from "./DurationOption.js"
import * as ExitCode from "./ExitCode.js"
import * as Render from "./Render.js"
import { json } from "./ResultCommands.js"
import { withBackend } from "./Run.js"

/** `date_done` as epoch millis (naive dates are UTC, as Celery writes them); none when absent/unreadable. */
export const doneAt = (meta: TaskMeta): number | undefined => {
  if (meta.dateDone === null) return undefined
  const d = meta.dateDone
  const millis = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(d) ? d : `${d}Z`)
  return Number.isNaN(millis) ? undefined : millis
}

interface Entry {
  readonly key: string
  readonly id: string
  readonly raw: string | null
  readonly ttl: number
  readonly meta: Either.Either<TaskMeta, string> | undefined
}

/** The task keys in batches, each read with one MGET and pipelined TTLs. */
const taskEntries = (prefix: string) =>
  Admin.scan(Admin.prefixPattern(prefix)).pipe(
    Stream.mapEffect((keys) =>
      Effect.map(Effect.all([Admin.mget(keys), Admin.ttls(keys)]), ([values, ttls]) =>
        keys.map((key, i): Entry => {
          const id = key.slice(prefix.length)
          const raw = values[i] ?? null
          return {
            key,
            id,
            raw,
            ttl: ttls[i] ?? -2,
            meta: raw === null ? undefined : Either.mapLeft(Meta.decodeTaskMeta(id, raw), (e) => e.message)
          }
        })
      )
    )
  )

const ls = Command.make(
  "ls",
  {
    ...Connection.options,
    json,
    state: Options.text("state").pipe(
      Options.withDescription("Only these states (comma-separated, e.g. FAILURE,REVOKED)"),
      Options.optional
    ),
    olderThan: DurationOption.make("older-than").pipe(
      Options.withDescription("Only results whose date_done is older than this (e.g. 1d)"),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(Options.withDescription("Print at most this many"), Options.optional)
  },
  (args) =>
    withBackend(args, (resolved) =>
      Effect.gen(function* () {
        const states = Option.map(args.state, (s) => new Set(s.split(",").map((x) => x.trim().toUpperCase())))
        const now = yield* Clock.currentTimeMillis
        const cutoff = Option.map(args.olderThan, (d) => now - Duration.toMillis(d))
        const keep = (e: Entry): boolean => {
          if (e.meta === undefined) return false // deleted between SCAN and MGET
          const state = Either.isRight(e.meta) ? e.meta.right.status : "UNDECODABLE"
          if (Option.isSome(states) && !states.value.has(state)) return false
          if (Option.isSome(cutoff)) {
            const at = Either.isRight(e.meta) ? doneAt(e.meta.right) : undefined
            if (at === undefined || at >= cutoff.value) return false
          }
          return true
        }
        let stream = taskEntries(resolved.keys.taskKeyprefix).pipe(Stream.flattenIterables, Stream.filter(keep))
        if (Option.isSome(args.limit)) stream = Stream.take(stream, Math.max(0, args.limit.value))
        yield* Stream.runForEach(stream, (e) => {
          const meta = e.meta!
          if (args.json) {
            return Console.log(
              Either.isRight(meta)
                ? Render.metaJson(meta.right, { ttl: e.ttl })
                : Render.jsonObject([
                    ["task_id", JSON.stringify(e.id)],
                    ["state", '"UNDECODABLE"'],
                    ["error", JSON.stringify(meta.left)]
                  ])
            )
          }
          return Console.log(
            Either.isRight(meta)
              ? `${e.id}  ${meta.right.status}  ${meta.right.dateDone ?? "-"}  ${Render.ttlText(e.ttl)}`
              : `${e.id}  UNDECODABLE  ${meta.left}`
          )
        })
        return ExitCode.OK
      })
    )
).pipe(Command.withDescription("List stored task results (SCAN + MGET): id, state, date_done, TTL."))

/** Upper bounds (seconds) of the age and TTL histograms, and their labels. */
const BUCKETS: ReadonlyArray<readonly [number, string]> = [
  [60, "< 1m"],
  [3600, "< 1h"],
  [86400, "< 1d"],
  [7 * 86400, "< 7d"],
  [30 * 86400, "< 30d"],
  [Number.POSITIVE_INFINITY, ">= 30d"]
]
const bucketOf = (seconds: number): string => BUCKETS.find(([max]) => seconds < max)![1]

const TOP = 5

const stats = Command.make("stats", { ...Connection.options, json }, (args) =>
  withBackend(args, (resolved) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const states = new Map<string, number>()
      const ages = new Map<string, number>()
      const ttls = new Map<string, number>()
      const noTtl: Array<string> = []
      let noTtlCount = 0
      let tasks = 0
      let memory = 0
      let largest: Array<{ readonly id: string; readonly bytes: number }> = []
      const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)
      yield* taskEntries(resolved.keys.taskKeyprefix).pipe(
        Stream.mapEffect((entries) =>
          Effect.map(Admin.memoryUsage(entries.map((e) => e.key)), (mem) => ({ entries, mem }))
        ),
        Stream.runForEach(({ entries, mem }) =>
          Effect.sync(() => {
            entries.forEach((e, i) => {
              if (e.raw === null || e.meta === undefined) return
              tasks++
              memory += mem[i] ?? 0
              bump(states, Either.isRight(e.meta) ? e.meta.right.status : "UNDECODABLE")
              const at = Either.isRight(e.meta) ? doneAt(e.meta.right) : undefined
              bump(ages, at === undefined ? "no date_done" : bucketOf(Math.max(0, (now - at) / 1000)))
              if (e.ttl === -1) {
                noTtlCount++
                if (noTtl.length < TOP) noTtl.push(e.id)
                bump(ttls, "no expiry")
              } else if (e.ttl >= 0) {
                bump(ttls, bucketOf(e.ttl))
              }
              const bytes = Buffer.byteLength(e.raw, "utf8")
              if (largest.length < TOP || bytes > largest[largest.length - 1]!.bytes) {
                largest = [...largest, { id: e.id, bytes }].sort((a, b) => b.bytes - a.bytes).slice(0, TOP)
              }
            })
          })
        )
      )
      let groupKeys = 0
      yield* Admin.scan(Admin.prefixPattern(resolved.keys.groupKeyprefix)).pipe(
        Stream.runForEach((keys) => Effect.sync(() => (groupKeys += keys.length)))
      )
      const server = yield* Admin.info("memory")
      const usedMemory = Number(server.get("used_memory") ?? Number.NaN)
      const order = (m: Map<string, number>, labels: ReadonlyArray<string>) =>
        [...m.entries()].sort(([a], [b]) => labels.indexOf(a) - labels.indexOf(b))
      const labels = [...BUCKETS.map(([, l]) => l), "no date_done", "no expiry"]
      if (args.json) {
        yield* Console.log(
          Render.jsonObject([
            ["tasks", String(tasks)],
            ["group_keys", String(groupKeys)],
            [
              "states",
              JSON.stringify(Object.fromEntries([...states.entries()].sort(([a], [b]) => TaskState.compare(a, b))))
            ],
            ["age", JSON.stringify(Object.fromEntries(order(ages, labels)))],
            ["ttl", JSON.stringify(Object.fromEntries(order(ttls, labels)))],
            ["memory", String(memory)],
            ["used_memory", Number.isNaN(usedMemory) ? "null" : String(usedMemory)],
            ["largest", JSON.stringify(largest.map((l) => ({ task_id: l.id, bytes: l.bytes })))],
            ["without_ttl", String(noTtlCount)],
            ["without_ttl_sample", JSON.stringify(noTtl)]
          ])
        )
      } else {
        const out: Array<string> = []
        out.push(`tasks:       ${tasks} results, ${groupKeys} group/chord keys`)
        out.push(
          `states:      ${
            [...states.entries()]
              .sort(([a], [b]) => TaskState.compare(a, b))
              .map(([s, n]) => `${s} ${n}`)
              .join("  ") || "-"
          }`
        )
        out.push(
          `age:         ${
            order(ages, labels)
              .map(([l, n]) => `${l}: ${n}`)
              .join("  ") || "-"
          }`
        )
        out.push(
          `ttl:         ${
            order(ttls, labels)
              .map(([l, n]) => `${l}: ${n}`)
              .join("  ") || "-"
          }`
        )
        out.push(
          `memory:      ${Render.bytesText(memory)} in task results${Number.isNaN(usedMemory) ? "" : ` (server uses ${Render.bytesText(usedMemory)})`}`
        )
        out.push(`largest:     ${largest.map((l) => `${l.id} (${Render.bytesText(l.bytes)})`).join(", ") || "-"}`)
        out.push(
          `without TTL: ${noTtlCount}${noTtlCount > 0 ? ` (e.g. ${noTtl.join(", ")}; set one with: effect-celery results expire --ttl 1d)` : ""}`
        )
        yield* Console.log(out.join("\n"))
      }
      return ExitCode.OK
    })
  )
).pipe(
  Command.withDescription(
    "Counts per state, age (by date_done) and TTL histograms, memory, the largest results, and keys without a TTL."
  )
)

const expire = Command.make(
  "expire",
  {
    ...Connection.options,
    json,
    ttl: DurationOption.make("ttl").pipe(Options.withDescription("The TTL to give (whole seconds, at least 1)")),
    match: Options.text("match").pipe(
      Options.withDescription("A SCAN pattern of keys to consider (default: every task and group key of the prefix)"),
      Options.optional
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("List the keys without a TTL, change nothing"))
  },
  (args) =>
    withBackend(args, (resolved) =>
      Effect.gen(function* () {
        const seconds = Math.floor(Duration.toSeconds(args.ttl))
        if (seconds < 1) {
          yield* Console.error("effect-celery: --ttl must be at least 1s")
          return ExitCode.USAGE
        }
        const patterns = Option.match(args.match, {
          onNone: () => [
            Admin.prefixPattern(resolved.keys.taskKeyprefix),
            Admin.prefixPattern(resolved.keys.groupKeyprefix)
          ],
          onSome: (m) => [m]
        })
        let scanned = 0
        let without = 0
        let changed = 0
        for (const pattern of patterns) {
          yield* Admin.scan(pattern).pipe(
            Stream.runForEach((keys) =>
              Effect.gen(function* () {
                scanned += keys.length
                const t = yield* Admin.ttls(keys)
                const none = keys.filter((_, i) => t[i] === -1)
                without += none.length
                if (args.dryRun) {
                  for (const k of none)
                    yield* Console.log(args.json ? Render.jsonObject([["key", JSON.stringify(k)]]) : k)
                } else {
                  changed += yield* Admin.expire(none, seconds)
                }
              })
            )
          )
        }
        yield* Console.log(
          args.json
            ? Render.jsonObject([
                ["scanned", String(scanned)],
                ["without_ttl", String(without)],
                ["expired", String(changed)],
                ["ttl", String(seconds)],
                ["dry_run", String(args.dryRun)]
              ])
            : args.dryRun
              ? `${without} of ${scanned} keys have no TTL; would set ${Render.durationText(seconds)} (dry run, nothing changed)`
              : `${without} of ${scanned} keys had no TTL; set ${Render.durationText(seconds)} on ${changed}`
        )
        return ExitCode.OK
      })
    )
).pipe(
  Command.withDescription(
    "Give a TTL to result keys that have none (results that never expire fill Redis). Keys with a TTL are left alone."
  )
)

export const command = Command.make("results").pipe(
  Command.withDescription("The result store as a whole: list, statistics, expiry."),
  Command.withSubcommands([ls, stats, expire])
)
