/**
 * One-shot runs of the system interpreter (`/usr/bin/python3`, the one with Celery 5.2.6, kombu
 * and redis-py): a script or `-c` code, optional stdin, stdout back as text, JSON or JSON lines.
 * Any failure (spawn error, non-zero exit, timeout, unparsable output) is a `HarnessError` that
 * carries stderr: tests that need the reference fail loudly, they never skip.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { HarnessError } from "./RedisServer.js"

/** The system interpreter: the one with Celery 5.2.6, kombu and redis-py installed. */
export const PYTHON = "/usr/bin/python3"

/**
 * The Celery a Python run imports: "5.2.6" is Debian's (the system interpreter's own), "5.6.3" the
 * unmodified sources in `../shared/celery-5.6/site` beside the repository, put first on PYTHONPATH.
 */
export type CeleryVersion = "5.2.6" | "5.6.3"

/** Every Celery version the interop suite runs against. */
export const CELERY_VERSIONS: ReadonlyArray<CeleryVersion> = ["5.2.6", "5.6.3"]

const REPO_ROOT = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/**
 * `shared/celery-5.6/site`: beside the repository (`../shared`, as CI lays it out), or one level
 * further up for a git worktree kept in a sub-folder. Absent is an error, never a skip.
 */
export const celery56Site = (): string => {
  const candidates = [Path.join(REPO_ROOT, "..", "shared"), Path.join(REPO_ROOT, "..", "..", "shared")].map((dir) =>
    Path.join(dir, "celery-5.6", "site")
  )
  const found = candidates.find((dir) => Fs.existsSync(Path.join(dir, "celery", "__init__.py")))
  if (found === undefined) {
    throw new Error(
      `Celery 5.6.3 sources not found (looked in ${candidates.join(", ")}): copy shared/ beside the repository`
    )
  }
  return found
}

/** The PYTHONPATH entries that select `version` (none for Debian's 5.2.6), before `extra`. */
export const celeryPythonPath = (version: CeleryVersion, extra: ReadonlyArray<string> = []): string =>
  [...(version === "5.6.3" ? [celery56Site()] : []), ...extra].join(Path.delimiter)

/** What to run: inline code (`python3 -c`) or a script file. */
export type PythonProgram = { readonly code: string } | { readonly script: string }

export interface PythonRunOptions {
  /** Arguments after the code or script (`sys.argv[1:]`). */
  readonly args?: ReadonlyArray<string>
  /** Written to stdin, which is then closed (closed empty when absent). */
  readonly stdin?: string
  /** Default 20 s. A real timer: tests on the TestClock never see an Effect timeout fire. */
  readonly timeoutMillis?: number
  /** Which Celery the interpreter imports; default "5.2.6". */
  readonly celery?: CeleryVersion
  /** Names the run in error messages (default: the script's path or "python -c"). */
  readonly label?: string
}

/** The environment minus the pyenv interpreter's module paths, which must not leak into the system one. */
export const systemPythonEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && key !== "PYTHONPATH" && key !== "PYTHONHOME") env[key] = value
  }
  return env
}

const labelOf = (program: PythonProgram, options: PythonRunOptions): string =>
  options.label ?? ("script" in program ? program.script : "python -c")

interface Output {
  readonly stdout: string
  readonly stderr: string
}

const run = (program: PythonProgram, options: PythonRunOptions): Effect.Effect<Output, HarnessError> =>
  Effect.async<Output, HarnessError>((resume) => {
    const label = labelOf(program, options)
    const argv = "script" in program ? [program.script] : ["-c", program.code]
    let env = systemPythonEnv()
    if (options.celery === "5.6.3") {
      try {
        env = { ...env, PYTHONPATH: celeryPythonPath("5.6.3") }
      } catch (cause) {
        return resume(Effect.fail(new HarnessError({ message: `${label}: ${String(cause)}`, cause })))
      }
    }
    const child = ChildProcess.spawn(PYTHON, [...argv, ...(options.args ?? [])], {
      env,
      stdio: ["pipe", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    let done = false
    const finish = (result: Effect.Effect<Output, HarnessError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(result)
    }
    const fail = (message: string, cause?: unknown) =>
      finish(Effect.fail(new HarnessError({ message: `${label}: ${message}\n${err}`, cause })))
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d))
    // A program that exits before reading all its input must not crash the run with EPIPE.
    child.stdin.on("error", () => {})
    child.on("error", (cause) => fail(`could not start ${PYTHON}`, cause))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      fail(`timed out after ${options.timeoutMillis ?? 20_000} ms`)
    }, options.timeoutMillis ?? 20_000)
    child.on("close", (code, signal) => {
      if (code === 0) finish(Effect.succeed({ stdout: out, stderr: err }))
      else fail(`exited with ${code ?? signal}`)
    })
    child.stdin.end(options.stdin ?? "")
    return Effect.sync(() => {
      done = true
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** Run the program to its end; succeeds with its stdout when it exits 0. Interruption kills it. */
export const runPython = (
  program: PythonProgram,
  options: PythonRunOptions = {}
): Effect.Effect<string, HarnessError> => Effect.map(run(program, options), (o) => o.stdout)

const parse = (label: string, text: string, stderr: string): Effect.Effect<unknown, HarnessError> =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (cause) =>
      new HarnessError({ message: `${label}: output is not JSON: ${text.slice(0, 2000)}\n${stderr}`, cause })
  })

/**
 * Run the program with `input` as JSON on stdin (when given) and parse its stdout as one JSON
 * value. The type parameter is the caller's claim about the program's output, not checked.
 */
export const pythonJson = <A>(
  program: PythonProgram,
  options: Omit<PythonRunOptions, "stdin"> & { readonly input?: unknown } = {}
): Effect.Effect<A, HarnessError> => {
  const { input, ...rest } = options
  return run(program, input === undefined ? rest : { ...rest, stdin: JSON.stringify(input) }).pipe(
    Effect.flatMap((o) => parse(labelOf(program, rest), o.stdout, o.stderr)),
    Effect.map((value) => value as A)
  )
}

/**
 * One JSON request per stdin line, one JSON reply per stdout line, in order: fails unless there
 * are exactly as many replies as requests.
 */
export const pythonJsonLines = <A = Record<string, unknown>>(
  program: PythonProgram,
  requests: ReadonlyArray<unknown>,
  options: Omit<PythonRunOptions, "stdin"> = {}
): Effect.Effect<Array<A>, HarnessError> =>
  run(program, { ...options, stdin: requests.map((r) => JSON.stringify(r)).join("\n") + "\n" }).pipe(
    Effect.flatMap((o) => {
      const label = labelOf(program, options)
      const lines = o.stdout.split("\n").filter((l) => l !== "")
      if (lines.length !== requests.length) {
        return Effect.fail(
          new HarnessError({ message: `${label} answered ${lines.length}/${requests.length} requests\n${o.stderr}` })
        )
      }
      return Effect.forEach(lines, (line) => parse(label, line, o.stderr) as Effect.Effect<A, HarnessError>)
    })
  )
