import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CELERY_VERSIONS, celeryWorker, pythonClient } from "../../../../test-support/Celery.js"
import * as InteropEnv from "./InteropEnv.js"

describe.each(CELERY_VERSIONS)("Celery %s", (version) =>
  layer(InteropEnv.layer({ worker: { resultExtended: true }, celery: version }), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })("interop harness", (it) => {
    it.effect(`runs Celery ${version} from the system interpreter, with a ready worker`, () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        assert.strictEqual(env.python.info["celery"], version)
        assert.strictEqual(env.python.info["kombu"], version === "5.2.6" ? "5.2.4" : "5.6.2")
        assert.isTrue(env.worker?.process.isRunning())
        const id = InteropEnv.uid("harness")
        yield* env.python.call("send", { task: "interop.add", args: [2, 3], task_id: id })
        const got = yield* env.python.call("get", { task_id: id })
        assert.deepStrictEqual(got, { state: "SUCCESS", repr: "5", waited: false })
        const raw = yield* InteropEnv.rawGet(env.raw, `celery-task-meta-${id}`)
        assert.include(raw ?? "", `"worker": "${env.worker?.hostname}"`)
      })
    )
    it.effect("reports a Python exception as a failure of the call", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const error = yield* Effect.flip(env.python.call("no_such_op"))
        assert.include(error.message, "KeyError('no_such_op')")
      })
    )
  })
)

layer(InteropEnv.layer({ worker: false }), { excludeTestServices: true, timeout: "60 seconds" })(
  "interop harness failures",
  (it) => {
    it.scoped("a worker whose app cannot be imported fails loudly instead of skipping", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const error = yield* Effect.flip(
          celeryWorker({
            appDir: InteropEnv.PYTHON_DIR,
            app: "no_such_app_module",
            brokerUrl: `${env.server.url}/1`,
            backendUrl: env.backendUrl
          })
        )
        assert.include(error.message, "exited before ready")
      })
    )
    it.scoped("a client that cannot start fails loudly", () =>
      Effect.gen(function* () {
        const env = yield* InteropEnv.InteropEnv
        const error = yield* Effect.flip(
          pythonClient({
            appDir: InteropEnv.PYTHON_DIR,
            script: "/nonexistent/client.py",
            brokerUrl: `${env.server.url}/1`,
            backendUrl: env.backendUrl
          })
        )
        assert.include(error.message, "python client exited")
      })
    )
  }
)
