/**
 * examples/demo.ts, run as `npm run demo` runs it (tsx), in memory and against a private
 * redis-server: the README's first command keeps working and prints what it promises.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { HarnessError, redisServer } from "../../../../test-support/RedisServer.js"

const ROOT = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../../..")
const TSX = Path.join(ROOT, "node_modules", ".bin", "tsx")

/** The demo's stdout; fails with its stderr when it exits non-zero (killed after 90 s). */
const demo = (backendUrl: string | undefined) =>
  Effect.async<string, HarnessError>((resume) => {
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith("CELERY_")) env[key] = value
    }
    if (backendUrl !== undefined) env["CELERY_RESULT_BACKEND"] = backendUrl
    const child = ChildProcess.execFile(
      TSX,
      ["examples/demo.ts"],
      { env, cwd: ROOT, timeout: 90_000 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(stdout)
            : Effect.fail(new HarnessError({ message: `demo: ${error.message}\n${stdout}\n${stderr}`, cause: error }))
        )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("examples/demo.ts", () => {
  it.live(
    "runs with the in-memory backend",
    () =>
      Effect.gen(function* () {
        const out = yield* demo(undefined)
        assert.include(out, "backend: in-memory")
        assert.include(out, "getMany → SUCCESS, SUCCESS, FAILURE")
        assert.match(out, /TaskFailedError: .*PaymentError/)
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "runs against a redis-server",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const url = `redis://127.0.0.1:${server.port}/0`
        const out = yield* demo(url)
        assert.include(out, `backend: ${url}`)
        assert.include(out, "getMany → SUCCESS, SUCCESS, FAILURE")
        assert.match(out, /TaskFailedError: .*PaymentError/)
      }),
    { timeout: 120_000 }
  )
})
