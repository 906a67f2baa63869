/**
 * examples/celery.ts, run as examples/README.md says: a real Celery worker on the example's
 * tasks.py, send.py for the ids, then the TypeScript example through tsx, with its output checked.
 */
import { assert, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { celeryEnv, celeryWorker, PYTHON } from "../../../../test-support/Celery.js"
import { HarnessError, redisServer } from "../../../../test-support/RedisServer.js"

const ROOT = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../../..")
const APP_DIR = Path.join(ROOT, "examples", "celery")

const run = (command: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, cwd: string) =>
  Effect.async<string, HarnessError>((resume) => {
    const child = ChildProcess.execFile(command, [...args], { env, cwd, timeout: 60_000 }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(
              new HarnessError({ message: `${command} ${args.join(" ")}: ${error.message}\n${stderr}`, cause: error })
            )
      )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

it.scopedLive(
  "examples/celery.ts follows a real worker's tasks and reads their results",
  () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const brokerUrl = `redis://127.0.0.1:${server.port}/1`
      const backendUrl = `redis://127.0.0.1:${server.port}/0`
      const appEnv = { CELERY_BROKER_URL: brokerUrl, CELERY_RESULT_BACKEND: backendUrl }
      const options = { appDir: APP_DIR, brokerUrl, backendUrl, env: appEnv }
      yield* celeryWorker({ ...options, app: "tasks" })
      const ids = (yield* run(PYTHON, ["send.py", "2"], celeryEnv(options), APP_DIR)).trim().split("\n")
      assert.lengthOf(ids, 3)
      const [first, second, failing] = ids as [string, string, string]
      const tsx = Path.join(ROOT, "node_modules", ".bin", "tsx")
      const out = yield* run(tsx, ["examples/celery.ts", ...ids], { ...process.env, ...appEnv }, ROOT)
      const lines = out.trim().split("\n")
      // The watch starts when tsx has started, so how many PROGRESS states it sees depends on timing;
      // the final states and the results do not.
      assert.include(lines, `${first} SUCCESS 40`)
      assert.include(lines, `${second} SUCCESS 41`)
      assert.include(lines, `result ${first} = 40`)
      assert.include(lines, `result ${second} = 41`)
      assert.include(lines, `failed ${failing}: ValueError: no such invoice`)
    }),
  { timeout: 120_000 }
)
