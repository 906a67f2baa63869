/**
 * Test harness for interoperability with real Python Celery on the system interpreter (Debian's
 * 5.2.6, or the shared 5.6.3 sources, see `CeleryVersion`):
 * a scoped Celery worker (`--pool=solo`) and a long-lived Python client process spoken to over
 * JSON lines. Readiness is the worker's own `<hostname> ready.` log line and the client's first
 * `{"ready": true}` line, never a sleep. A missing Celery or a worker that cannot start fails with
 * `HarnessError` (tests fail loudly, they never skip).
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import type { Scope } from "effect"
import { Deferred, Duration, Effect, Exit, FiberId } from "effect"
import type { CeleryVersion } from "./Python.js"
import { celeryPythonPath, PYTHON, systemPythonEnv } from "./Python.js"
import { HarnessError, spawn } from "./RedisServer.js"
import type { ServerProcess } from "./RedisServer.js"

export { CELERY_VERSIONS, PYTHON } from "./Python.js"
export type { CeleryVersion } from "./Python.js"

export interface CeleryAppOptions {
  /** Directory put on `PYTHONPATH` (and used as cwd): holds the app module. */
  readonly appDir: string
  /** Which Celery runs: Debian's "5.2.6" (default) or the shared "5.6.3" sources. */
  readonly celeryVersion?: CeleryVersion
  readonly brokerUrl: string
  readonly backendUrl: string
  /** `task_track_started`, default true. */
  readonly trackStarted?: boolean
  /** `result_extended`, default false. */
  readonly resultExtended?: boolean
  /** `result_backend_transport_options.result_chord_ordered`, default true. */
  readonly chordOrdered?: boolean
  /** More environment variables. */
  readonly env?: Readonly<Record<string, string>>
}

/**
 * The environment an app module reads its configuration from (see
 * packages/redis/test/interop/python/interop_app.py): `CELERY_TEST_*` variables.
 */
export const celeryEnv = (options: CeleryAppOptions): Record<string, string> => ({
  ...systemPythonEnv(),
  PYTHONPATH: celeryPythonPath(options.celeryVersion ?? "5.2.6", [options.appDir]),
  PYTHONUNBUFFERED: "1",
  PYTHONDONTWRITEBYTECODE: "1",
  CELERY_TEST_BROKER_URL: options.brokerUrl,
  CELERY_TEST_RESULT_BACKEND: options.backendUrl,
  CELERY_TEST_TRACK_STARTED: options.trackStarted === false ? "0" : "1",
  CELERY_TEST_RESULT_EXTENDED: options.resultExtended === true ? "1" : "0",
  CELERY_TEST_CHORD_ORDERED: options.chordOrdered === false ? "0" : "1",
  ...options.env
})

export interface CeleryWorkerOptions extends CeleryAppOptions {
  /** The module given to `-A`. */
  readonly app: string
  /** The worker's node name (`-n`); a unique one by default. */
  readonly hostname?: string
  /** Default 30 s: a cold Celery start takes a few seconds on a busy machine. */
  readonly readyTimeout?: number
}

export interface CeleryWorker {
  /** The node name, as written in the `worker` extended field and the STARTED meta. */
  readonly hostname: string
  readonly process: ServerProcess
}

/**
 * A real Celery worker (`python3 -m celery -A <app> worker --pool=solo -l info`), ready when it
 * logs `<hostname> ready.`. Scope close sends SIGTERM (warm shutdown) and waits for the exit,
 * then SIGKILLs whatever is left.
 */
export const celeryWorker = (options: CeleryWorkerOptions): Effect.Effect<CeleryWorker, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const hostname = options.hostname ?? `w${Crypto.randomBytes(4).toString("hex")}@interop`
    const env = celeryEnv(options)
    // `env` execs the interpreter, so the spawned pid is the worker's own pid.
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`)
    const proc = yield* spawn({
      command: "/usr/bin/env",
      args: [
        "-i",
        ...assignments,
        PYTHON,
        "-m",
        "celery",
        "-A",
        options.app,
        "worker",
        "--pool=solo",
        "-l",
        "info",
        "-n",
        hostname,
        // No peers to wait for: mingle would cost a second at start for nothing.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat"
      ],
      cwd: options.appDir,
      readyLine: `${hostname} ready.`,
      name: `celery-worker:${hostname}`,
      readyTimeout: options.readyTimeout ?? 30_000
    })
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const pid = proc.pid()
        if (pid === undefined || !proc.isRunning()) return Effect.void
        try {
          process.kill(pid, "SIGTERM")
        } catch {
          return Effect.void
        }
        // Bounded (10 s): the spawn finalizer, run next, SIGKILLs a worker that did not stop.
        return Effect.sleep("20 millis").pipe(Effect.repeat({ while: () => proc.isRunning(), times: 500 }))
      })
    )
    return { hostname, process: proc }
  })

// ---------------------------------------------------------------------------------------------
// The Python client process

export interface PythonClientOptions extends CeleryAppOptions {
  /** The client script (JSON lines on stdin/stdout, see interop/python/client.py). */
  readonly script: string
  readonly readyTimeout?: number
}

/** One request in flight: its events and its final value. */
export interface PythonRequest {
  /** The data of the first `name` event of this request (waits for it). */
  readonly event: (name: string, options?: { readonly timeoutMillis?: number }) => Effect.Effect<unknown, HarnessError>
  /** The request's value; fails with the Python exception (repr and traceback) when it raised. */
  readonly result: Effect.Effect<unknown, HarnessError>
}

export interface PythonClient {
  /** What the client printed when ready (Celery, kombu and redis-py versions). */
  readonly info: Readonly<Record<string, unknown>>
  /** Send a request and wait for its value. Requests run one at a time, in order. */
  readonly call: (
    op: string,
    params?: Readonly<Record<string, unknown>>,
    options?: { readonly timeoutMillis?: number }
  ) => Effect.Effect<unknown, HarnessError>
  /** Send a request without waiting: to act on its events while it runs. */
  readonly start: (
    op: string,
    params?: Readonly<Record<string, unknown>>,
    options?: { readonly timeoutMillis?: number }
  ) => Effect.Effect<PythonRequest, HarnessError>
  /** Everything the process wrote to stderr, for diagnostics. */
  readonly stderr: () => string
}

interface Pending {
  readonly result: Deferred.Deferred<unknown, HarnessError>
  readonly events: Map<string, Deferred.Deferred<unknown, HarnessError>>
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Spawn the client script under the system interpreter; ready on its first line. */
export const pythonClient = (options: PythonClientOptions): Effect.Effect<PythonClient, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<Record<string, unknown>, HarnessError>()
    const exited = yield* Deferred.make<void>()
    const pending = new Map<number, Pending>()
    let nextId = 1
    let stdoutBuffer = ""
    let stderr = ""
    let dead: HarnessError | undefined

    const eventDeferred = (p: Pending, name: string) => {
      let d = p.events.get(name)
      if (d === undefined) {
        d = Deferred.unsafeMake<unknown, HarnessError>(FiberId.none)
        p.events.set(name, d)
      }
      return d
    }

    const failAll = (error: HarnessError) => {
      dead = error
      Deferred.unsafeDone(ready, Exit.fail(error))
      for (const p of pending.values()) {
        Deferred.unsafeDone(p.result, Exit.fail(error))
        for (const d of p.events.values()) Deferred.unsafeDone(d, Exit.fail(error))
      }
      pending.clear()
    }

    const onLine = (line: string) => {
      if (line.trim() === "") return
      let msg: unknown
      try {
        msg = JSON.parse(line)
      } catch {
        stderr += `[stdout, not JSON] ${line}\n`
        return
      }
      if (!isRecord(msg)) return
      if (msg["ready"] === true) {
        Deferred.unsafeDone(ready, Exit.succeed(msg))
        return
      }
      const id = msg["id"]
      const p = typeof id === "number" ? pending.get(id) : undefined
      if (p === undefined) {
        stderr += `[stdout, unmatched] ${line}\n`
        return
      }
      if (typeof msg["event"] === "string") {
        Deferred.unsafeDone(eventDeferred(p, msg["event"]), Exit.succeed(msg["data"]))
        return
      }
      pending.delete(id as number)
      const failure = new HarnessError({
        message: `python ${String(msg["error"])}\n${typeof msg["traceback"] === "string" ? msg["traceback"] : ""}`
      })
      Deferred.unsafeDone(p.result, msg["ok"] === true ? Exit.succeed(msg["value"]) : Exit.fail(failure))
      // Events never emitted by a finished request fail instead of hanging.
      for (const d of p.events.values())
        Deferred.unsafeDone(d, Exit.fail(new HarnessError({ message: "request finished without that event" })))
    }

    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const proc = ChildProcess.spawn(PYTHON, ["-u", options.script], {
          cwd: options.appDir,
          env: celeryEnv(options),
          stdio: ["pipe", "pipe", "pipe"]
        })
        proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          stdoutBuffer += chunk
          let nl = stdoutBuffer.indexOf("\n")
          while (nl !== -1) {
            const line = stdoutBuffer.slice(0, nl)
            stdoutBuffer = stdoutBuffer.slice(nl + 1)
            onLine(line)
            nl = stdoutBuffer.indexOf("\n")
          }
        })
        proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
          stderr += chunk
        })
        // A write after the process died must not crash the test run.
        proc.stdin.on("error", (cause) => {
          stderr += `[stdin error] ${String(cause)}\n`
        })
        proc.on("error", (cause) => {
          failAll(new HarnessError({ message: `python client could not start: ${String(cause)}`, cause }))
          Deferred.unsafeDone(exited, Exit.void)
        })
        proc.on("exit", (code, signal) => {
          failAll(
            new HarnessError({
              message: `python client exited (code=${code} signal=${signal}):\n${stderr.slice(-4000)}`
            })
          )
          Deferred.unsafeDone(exited, Exit.void)
        })
        return proc
      }),
      (proc) =>
        Effect.gen(function* () {
          if (proc.exitCode !== null || proc.signalCode !== null) return
          proc.stdin.end() // EOF: the client's loop ends and it exits by itself
          // Finalizers are uninterruptible: the wait must be made interruptible for the timeout to work.
          const gone = yield* Effect.interruptible(Deferred.await(exited)).pipe(
            Effect.timeout(Duration.seconds(5)),
            Effect.option
          )
          if (gone._tag === "None") {
            proc.kill("SIGKILL")
            yield* Effect.interruptible(Deferred.await(exited)).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
          }
        })
    )

    const info = yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: options.readyTimeout ?? 30_000,
        onTimeout: () => new HarnessError({ message: `python client not ready:\n${stderr.slice(-4000)}` })
      })
    )

    const start = (
      op: string,
      params: Readonly<Record<string, unknown>> = {},
      o?: { readonly timeoutMillis?: number }
    ) =>
      Effect.suspend(() => {
        if (dead !== undefined) return Effect.fail(dead)
        const id = nextId++
        const p: Pending = { result: Deferred.unsafeMake<unknown, HarnessError>(FiberId.none), events: new Map() }
        pending.set(id, p)
        child.stdin.write(`${JSON.stringify({ id, op, params })}\n`)
        const timeoutMillis = o?.timeoutMillis ?? 30_000
        const request: PythonRequest = {
          event: (name, eo) =>
            Deferred.await(eventDeferred(p, name)).pipe(
              Effect.timeoutFail({
                duration: eo?.timeoutMillis ?? timeoutMillis,
                onTimeout: () =>
                  new HarnessError({ message: `python ${op}: no "${name}" event\n${stderr.slice(-2000)}` })
              })
            ),
          result: Deferred.await(p.result).pipe(
            Effect.timeoutFail({
              duration: timeoutMillis,
              onTimeout: () =>
                new HarnessError({ message: `python ${op}: no answer in ${timeoutMillis} ms\n${stderr.slice(-2000)}` })
            })
          )
        }
        return Effect.succeed(request)
      })

    return {
      info,
      start,
      call: (op, params, o) => Effect.flatMap(start(op, params, o), (r) => r.result),
      stderr: () => stderr
    } satisfies PythonClient
  })
