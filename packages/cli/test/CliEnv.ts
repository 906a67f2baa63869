/**
 * The environment of the CLI tests: one private redis-server, one real Celery worker writing
 * results on it (db 0; broker db 1), one long-lived Python client sending tasks, a raw node-redis
 * connection for exact bytes and `PUBSUB NUMSUB`, and the BUILT CLI (`packages/cli/dist/bin.js`,
 * made by `npm run build`) spawned as a user would run it.
 */
import * as ChildProcess from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { Scope } from "effect"
import { Context, Deferred, Effect, Exit, Layer, Schedule } from "effect"
import { createClient } from "redis"
import type { CeleryWorker, PythonClient } from "../../../test-support/Celery.js"
import { celeryWorker, pythonClient } from "../../../test-support/Celery.js"
import { HarnessError, redisServer } from "../../../test-support/RedisServer.js"
import type { RedisServer } from "../../../test-support/RedisServer.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
export const BIN = Path.resolve(here, "../dist/bin.js")
const CLI_PYTHON = Path.join(here, "python")
const INTEROP_PYTHON = Path.resolve(here, "../../redis/test/interop/python")

export type RawRedis = ReturnType<typeof createClient>

export interface CliEnv {
  readonly server: RedisServer
  readonly backendUrl: string
  readonly worker: CeleryWorker
  readonly python: PythonClient
  readonly raw: RawRedis
}

export const CliEnv = Context.GenericTag<CliEnv>("effect-celery/test/CliEnv")

const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => {
        const client = createClient({ url })
        client.on("error", () => {})
        return client.connect()
      },
      catch: (cause) => new HarnessError({ message: `raw redis connect ${url}`, cause })
    }),
    (client) =>
      Effect.interruptible(Effect.promise(() => client.quit().catch(() => undefined))).pipe(
        Effect.timeout("2 seconds"),
        Effect.ignore
      )
  )

const make = Effect.gen(function* () {
  if (!Fs.existsSync(BIN)) return yield* new HarnessError({ message: `${BIN} is missing: run npm run build first` })
  const server = yield* redisServer()
  const backendUrl = `${server.url}/0`
  const app = { brokerUrl: `${server.url}/1`, backendUrl }
  const [worker, python, raw] = yield* Effect.all(
    [
      celeryWorker({
        ...app,
        app: "cli_app",
        appDir: CLI_PYTHON,
        env: { PYTHONPATH: `${CLI_PYTHON}:${INTEROP_PYTHON}` }
      }),
      pythonClient({ ...app, appDir: INTEROP_PYTHON, script: Path.join(INTEROP_PYTHON, "client.py") }),
      rawClient(backendUrl)
    ],
    { concurrency: "unbounded" }
  )
  return { server, backendUrl, worker, python, raw } satisfies CliEnv
})

export const layer: Layer.Layer<CliEnv, HarnessError> = Layer.scoped(CliEnv, make)

/** A fresh id per test: tests share the server and run concurrently. */
export const uid = (label: string): string => `${label}-${randomUUID()}`

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly millis: number
}

export interface Running {
  readonly stdout: () => string
  readonly stderr: () => string
  /** Wait until stdout contains `text`. */
  readonly waitForStdout: (text: string, timeoutMillis?: number) => Effect.Effect<void, HarnessError>
  readonly kill: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Close our end of its stdout, as `| head` does once it has read enough. */
  readonly closeStdout: Effect.Effect<void>
  /** The exit (fails instead of hanging past `timeoutMillis`, default 30 s). */
  readonly exit: (timeoutMillis?: number) => Effect.Effect<Finished, HarnessError>
}

export interface SpawnOptions {
  /**
   * Variables over the inherited environment; `CELERY_RESULT_BACKEND` is the `CliEnv`'s URL when
   * there is one, else unset, unless given.
   */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Run another program with these arguments instead (e.g. `script` for a pseudo-terminal). */
  readonly command?: string
}

/** Spawn the CLI with `args`; killed with SIGKILL when the scope closes if still running. */
export const spawnCli = (
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.gen(function* () {
    const env = yield* Effect.serviceOption(CliEnv)
    const childEnv: Record<string, string> = {}
    const defaultUrl = env._tag === "Some" ? env.value.backendUrl : undefined
    for (const [k, v] of Object.entries({ ...process.env, CELERY_RESULT_BACKEND: defaultUrl, ...options.env })) {
      if (v !== undefined) childEnv[k] = v
    }
    const started = Date.now()
    let stdout = ""
    let stderr = ""
    const waiters = new Set<{ readonly text: string; readonly done: () => void }>()
    const check = () => {
      for (const w of waiters) {
        if (stdout.includes(w.text)) {
          waiters.delete(w)
          w.done()
        }
      }
    }
    const exited = yield* Deferred.make<Finished>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const proc =
          options.command !== undefined
            ? ChildProcess.spawn(options.command, [...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] })
            : ChildProcess.spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] })
        proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          stdout += chunk
          check()
        })
        proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
          stderr += chunk
        })
        proc.on("close", (code, signal) => {
          Deferred.unsafeDone(exited, Exit.succeed({ code, signal, stdout, stderr, millis: Date.now() - started }))
        })
        return proc
      }),
      (proc) => Effect.sync(() => (proc.exitCode === null && proc.signalCode === null ? proc.kill("SIGKILL") : true))
    )
    const describe = () => `stdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`
    return {
      stdout: () => stdout,
      stderr: () => stderr,
      waitForStdout: (text, timeoutMillis = 20_000) =>
        Effect.async<void>((resume) => {
          const w = { text, done: () => resume(Effect.void) }
          waiters.add(w)
          check()
          return Effect.sync(() => waiters.delete(w))
        }).pipe(
          Effect.timeoutFail({
            duration: timeoutMillis,
            onTimeout: () => new HarnessError({ message: `no "${text}" on stdout of ${args.join(" ")}\n${describe()}` })
          })
        ),
      kill: (signal) => Effect.sync(() => void child.kill(signal)),
      closeStdout: Effect.sync(() => child.stdout.destroy()),
      exit: (timeoutMillis = 30_000) =>
        Deferred.await(exited).pipe(
          Effect.timeoutFail({
            duration: timeoutMillis,
            onTimeout: () => new HarnessError({ message: `${args.join(" ")} did not exit\n${describe()}` })
          })
        )
    } satisfies Running
  })

/** Run the CLI to its exit. */
export const runCli = (args: ReadonlyArray<string>, options: SpawnOptions = {}) =>
  Effect.scoped(Effect.flatMap(spawnCli(args, options), (r) => r.exit()))

/** Subscribers to `channel` now. */
export const numsub = (channel: string) =>
  Effect.flatMap(CliEnv, (env) =>
    Effect.tryPromise({
      try: () => env.raw.pubSubNumSub(channel),
      catch: (cause) => new HarnessError({ message: "PUBSUB NUMSUB", cause })
    })
  ).pipe(Effect.map((counts) => counts[channel] ?? 0))

/** Wait until `channel` has at least one subscriber: the CLI's readiness signal for watch/wait. */
export const awaitSubscribed = (channel: string) =>
  numsub(channel).pipe(
    Effect.flatMap((n) =>
      n > 0 ? Effect.void : Effect.fail(new HarnessError({ message: `${channel}: no subscriber` }))
    ),
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("15 seconds")))
  )

/** Send a task through the Python client (Celery's `send_task`) with a chosen id. */
export const send = (task: string, args: ReadonlyArray<unknown>, taskId: string) =>
  Effect.flatMap(CliEnv, (env) => env.python.call("send", { task, args, task_id: taskId }))

/** Wait (in Python, `AsyncResult.get`) until the task is ready. */
export const settle = (taskId: string) =>
  Effect.flatMap(CliEnv, (env) => env.python.call("get", { task_id: taskId, propagate: false, timeout: 20 }))

/** Raw commands for setting up store states the worker would not produce. */
export const redis = <A>(f: (raw: RawRedis) => Promise<A>) =>
  Effect.flatMap(CliEnv, (env) =>
    Effect.tryPromise({ try: () => f(env.raw), catch: (cause) => new HarnessError({ message: "raw redis", cause }) })
  )

/** The non-empty lines of a text. */
export const lines = (text: string): ReadonlyArray<string> => text.split("\n").filter((l) => l.trim() !== "")

/** Parse each line as JSON. */
export const jsonLines = (text: string): ReadonlyArray<Record<string, unknown>> =>
  lines(text).map((l) => JSON.parse(l) as Record<string, unknown>)
