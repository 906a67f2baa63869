/**
 * `effect-celery result …`: one task's result at a time, through the library's `ResultBackend`
 * and `ResultConsumer` (get, wait, watch, forget, exists), plus `inspect`, which reads the key
 * itself (`Admin`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { DecodeError } from "@effect-celery/core/Errors"
import type { TaskMeta } from "@effect-celery/core/Meta"
import * as Meta from "@effect-celery/core/Meta"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Admin from "./Admin.js"
import * as Connection from "./Connection.js"
import * as DurationOption from "./DurationOption.js"
import * as ExitCode from "./ExitCode.js"
import * as Render from "./Render.js"
import { withBackend } from "./Run.js"
import * as Watch from "./Watch.js"

const ids = Args.text({ name: "task-id" }).pipe(Args.withDescription("Celery task id(s)"), Args.atLeast(1))
const oneId = Args.text({ name: "task-id" }).pipe(Args.withDescription("Celery task id"))
export const json = Options.boolean("json").pipe(Options.withDescription("One JSON object per line, for scripts"))
const timeout = DurationOption.make("timeout").pipe(
  Options.withDescription(`Give up after this long (exit ${ExitCode.TIMEOUT}); default: wait until ready or Ctrl-C`),
  Options.optional
)

/** One line per ready or changed task: `<id>  <STATE>  <what it carries>`. */
export const line = (meta: TaskMeta): string => {
  const what = Render.summary(meta)
  return `${meta.taskId}  ${meta.status}${what === "" ? "" : `  ${what}`}`
}

const undecodableLine = (error: DecodeError): string => `${error.id}  UNDECODABLE  ${error.message}`

const get = Command.make(
  "get",
  {
    ...Connection.options,
    ids,
    json,
    traceback: Options.boolean("traceback").pipe(Options.withDescription("Also print the stored traceback"))
  },
  (args) =>
    withBackend(args, (resolved) =>
      Effect.gen(function* () {
        const backend = yield* ResultBackend
        const rows = yield* Effect.forEach(
          args.ids,
          (id) => Effect.all([backend.get(id), Admin.ttl(resolved.keys.task(id))], { concurrency: 2 }),
          { concurrency: 16 }
        )
        for (const [meta, ttl] of rows) {
          yield* Console.log(
            args.json ? Render.metaJson(meta, { ttl }) : Render.metaBlock(meta, { ttl, traceback: args.traceback })
          )
        }
        return ExitCode.ofStates(rows.map(([meta]) => meta.status))
      })
    )
).pipe(
  Command.withDescription(
    `Print each task's state, result, date_done and TTL. Exit ${ExitCode.OK} when all are SUCCESS, ${ExitCode.FAILED} when one is FAILURE/REVOKED, ${ExitCode.NOT_READY} when one is not ready (a missing result reads as PENDING).`
  )
)

const wait = Command.make("wait", { ...Connection.options, ids, json, timeout }, (args) =>
  withBackend(args, () =>
    Effect.gen(function* () {
      const backend = yield* ResultBackend
      const states = new Map<string, string>()
      let undecodable = false
      const run = backend
        .getMany(args.ids, Option.match(args.timeout, { onNone: () => ({}), onSome: (t) => ({ timeout: t }) }))
        .pipe(
          Stream.runForEach((item) =>
            Either.match(item, {
              onLeft: (error) => {
                undecodable = true
                return Console.log(args.json ? Render.decodeErrorJson(error) : undecodableLine(error))
              },
              onRight: (meta) => {
                states.set(meta.taskId, meta.status)
                return Console.log(args.json ? Render.metaJson(meta) : line(meta))
              }
            })
          )
        )
      const timedOut = yield* run.pipe(
        Effect.as(false),
        Effect.catchTag("TimeoutError", (error) =>
          Effect.as(
            Console.error(
              `effect-celery: TimeoutError: ${error.celeryMessage}; not ready: ${args.ids
                .filter((id) => !states.has(id))
                .join(", ")}`
            ),
            true
          )
        )
      )
      if (timedOut) return ExitCode.TIMEOUT
      if (undecodable) return ExitCode.BACKEND
      return ExitCode.ofStates(states.values())
    })
  )
).pipe(
  Command.withDescription(
    `Wait (over Pub/Sub) until every task is ready, printing each as it becomes ready. Exit codes as for get; ${ExitCode.TIMEOUT} when --timeout elapses first.`
  )
)

const watch = Command.make(
  "watch",
  {
    ...Connection.options,
    ids: Args.text({ name: "task-id" }).pipe(Args.withDescription("Celery task id(s)"), Args.repeated),
    group: Options.text("group").pipe(
      Options.withDescription("Watch every member of this saved group"),
      Options.optional
    ),
    json,
    timeout
  },
  (args) =>
    withBackend(args, () =>
      Watch.run({
        ids: args.ids,
        group: Option.getOrUndefined(args.group),
        json: args.json,
        timeout: Option.getOrUndefined(args.timeout)
      })
    )
).pipe(
  Command.withDescription(
    "Follow every state change (STARTED, PROGRESS and its meta, RETRY and its exception, SUCCESS/FAILURE) until all are ready: a live table on a terminal, one line per change otherwise. Exit codes as for wait."
  )
)

const forget = Command.make("forget", { ...Connection.options, ids, json }, (args) =>
  withBackend(args, () =>
    Effect.gen(function* () {
      const backend = yield* ResultBackend
      for (const id of args.ids) {
        const stored = yield* backend.exists(id)
        yield* backend.forget(id)
        yield* Console.log(
          args.json
            ? Render.jsonObject([
                ["task_id", JSON.stringify(id)],
                ["forgotten", String(stored)]
              ])
            : stored
              ? `forgot ${id}`
              : `${id}: nothing stored`
        )
      }
      return ExitCode.OK
    })
  )
).pipe(Command.withDescription("Delete the stored results (AsyncResult.forget)."))

const exists = Command.make("exists", { ...Connection.options, id: oneId, json }, (args) =>
  withBackend(args, () =>
    Effect.gen(function* () {
      const stored = yield* (yield* ResultBackend).exists(args.id)
      yield* Console.log(
        args.json
          ? Render.jsonObject([
              ["task_id", JSON.stringify(args.id)],
              ["exists", String(stored)]
            ])
          : `${args.id}: ${stored ? "stored" : "not stored"}`
      )
      return stored ? ExitCode.OK : ExitCode.NOT_READY
    })
  )
).pipe(
  Command.withDescription(
    `Whether a result is stored for the task (Celery reads a missing one as PENDING). Exit ${ExitCode.OK} when stored, ${ExitCode.NOT_READY} when not.`
  )
)

const inspect = Command.make("inspect", { ...Connection.options, id: oneId, json }, (args) =>
  withBackend(args, (resolved) =>
    Effect.gen(function* () {
      const key = resolved.keys.task(args.id)
      const raw = yield* Admin.get(key)
      const [ttl, type, encoding, memory, subscribers] = yield* Effect.all([
        Admin.ttl(key),
        Admin.type(key),
        raw === null ? Effect.succeed(null) : Admin.encoding(key),
        Effect.map(Admin.memoryUsage([key]), (m) => m[0] ?? null),
        Effect.map(Admin.pubsubNumsub([key]), (n) => n.get(key) ?? 0)
      ])
      const decoded = raw === null ? undefined : Meta.decodeTaskMeta(args.id, raw)
      const bytes = raw === null ? null : Buffer.byteLength(raw, "utf8")
      if (args.json) {
        yield* Console.log(
          Render.jsonObject([
            ["task_id", JSON.stringify(args.id)],
            ["key", JSON.stringify(key)],
            ["channel", JSON.stringify(key)],
            ["type", JSON.stringify(type)],
            ["encoding", JSON.stringify(encoding)],
            ["bytes", JSON.stringify(bytes)],
            ["memory", JSON.stringify(memory)],
            ["ttl", ttl < 0 ? "null" : String(ttl)],
            ["subscribers", String(subscribers)],
            ["raw", JSON.stringify(raw)],
            ["meta", decoded !== undefined && Either.isRight(decoded) ? Render.metaJson(decoded.right) : "null"],
            [
              "decode_error",
              decoded !== undefined && Either.isLeft(decoded) ? JSON.stringify(decoded.left.message) : "null"
            ]
          ])
        )
      } else {
        const rows: Array<readonly [string, string]> = [
          ["key", key],
          ["channel", `${key} (${subscribers} subscriber${subscribers === 1 ? "" : "s"} now)`],
          [
            "type",
            type === "none"
              ? "none (no result stored: reads as PENDING)"
              : `${type}${encoding === null ? "" : ` (${encoding})`}`
          ],
          ["ttl", Render.ttlText(ttl)]
        ]
        if (bytes !== null)
          rows.push(["size", `${bytes} bytes${memory === null ? "" : `, ${Render.bytesText(memory)} in memory`}`])
        for (const [k, v] of rows) yield* Console.log(`${(k + ":").padEnd(9)} ${v}`)
        if (raw !== null) yield* Console.log(`raw:\n  ${raw}`)
        if (decoded !== undefined) {
          yield* Console.log(
            Either.match(decoded, {
              onLeft: (e) => `decoded: UNDECODABLE: ${e.message}`,
              onRight: (meta) => `decoded:\n${Render.metaBlock(meta, { traceback: true }).replace(/^/gm, "  ")}`
            })
          )
        }
      }
      if (decoded !== undefined && Either.isLeft(decoded)) return ExitCode.BACKEND
      return decoded === undefined ? ExitCode.NOT_READY : ExitCode.ofStates([decoded.right.status])
    })
  )
).pipe(
  Command.withDescription(
    "Debug interop: the key, its channel and subscribers, type, TTL, size, the raw stored bytes and the decoded meta."
  )
)

/** `result` and its subcommands. */
export const command = Command.make("result").pipe(
  Command.withDescription("Look at, wait for, follow and forget task results."),
  Command.withSubcommands([get, wait, watch, forget, exists, inspect])
)
