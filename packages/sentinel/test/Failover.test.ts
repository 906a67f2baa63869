/**
 * Failover on a real topology (1 master, 1 replica, 3 sentinels, quorum 2, down-after 1 s): the
 * backend keeps writing and a watch keeps delivering across SIGKILL of the master and across a
 * graceful `SENTINEL FAILOVER`.
 */
import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Queue,
  Schedule,
  Stream
} from "effect"
import { ResultBackend, ResultConsumer } from "@effect-celery/core"
import type { RetryPolicy } from "@effect-celery/core"
import { Sentinel, SentinelBackend } from "@effect-celery/sentinel"
import type { SentinelTopology } from "../../../test-support/Sentinel.js"
import { sentinelTopology } from "../../../test-support/Sentinel.js"
import * as Metrics from "./Metrics.js"

/**
 * About Celery's default budget (20 retries ≈ 19 s), in finer steps so the measured recovery is the
 * failover itself rather than the 1 s retry grid.
 */
const retryPolicy: Partial<RetryPolicy.RetryPolicy> = {
  maxRetries: 80,
  intervalStart: 0,
  intervalStep: 0.25,
  intervalMax: 0.25
}

/** Celery logs every retry at ERROR; keep the test output to the measurements. */
const quietly = Logger.withMinimumLogLevel(LogLevel.None)

const within = <A, E, R>(self: Effect.Effect<A, E, R>, millis: number, what: string) =>
  self.pipe(
    Effect.timeoutFail({
      duration: Duration.millis(millis),
      onTimeout: () => new Error(`${what}: not within ${millis} ms`)
    })
  )

interface RunResult {
  readonly recoveryMillis: number
  readonly newMasterPort: number
}

/**
 * One failover with the backend live: tasks STARTED and watched, the master taken away, then a
 * write (retried under the policy) measures the recovery, and every task's final state written
 * after the recovery must reach the watch.
 */
const failoverRun = (how: "SIGKILL" | "SENTINEL FAILOVER") =>
  Effect.scoped(
    Effect.gen(function* () {
      const topo: SentinelTopology = yield* sentinelTopology()
      const context = yield* Layer.build(
        SentinelBackend.layerUrl(topo.url, { masterName: topo.masterName, retryPolicy })
      )
      const backend = Context.get(context, ResultBackend.ResultBackend)
      const consumer = Context.get(context, ResultConsumer.ResultConsumer)
      const sentinel = Context.get(context, Sentinel.Sentinel)
      const run = randomUUID()
      const ids = Array.from({ length: 5 }, (_, i) => `failover-${i}-${run}`)
      for (const id of ids) yield* backend.markAsStarted(id, { pid: 1, hostname: "failover@test" })

      const events = yield* Queue.unbounded<string>()
      const watch = yield* consumer.watch(ids).pipe(
        Stream.runForEach((event) =>
          Queue.offer(
            events,
            Either.isRight(event)
              ? `${event.right.taskId} ${event.right.status} ${JSON.stringify(event.right.result)}`
              : `decode error ${event.left.id}`
          )
        ),
        Effect.fork
      )
      // The watch is live once it has delivered the current (STARTED) state of every task.
      for (let i = 0; i < ids.length; i++)
        assert.include(yield* within(Queue.take(events), 10_000, "initial states"), " STARTED ")

      // A writer that keeps storing a counter all along (each store retried under the policy).
      const ticker = `ticker-${run}`
      let written = 0
      let stop = false
      const writer = yield* Effect.gen(function* () {
        while (!stop) {
          yield* backend.store(ticker, "PROGRESS", { n: written + 1 })
          written++
          yield* Effect.sleep("20 millis")
        }
      }).pipe(Effect.fork)
      // Until the writer has made `n` writes; if it ended instead, the test fails with its exit.
      const untilWritten = (n: number) =>
        Effect.flatMap(Fiber.poll(writer), (ended) =>
          Option.isSome(ended)
            ? Effect.dieMessage(
                `the writer ended after ${written} writes: ${Cause.pretty(Exit.isFailure(ended.value) ? ended.value.cause : Cause.empty)}`
              )
            : written >= n
              ? Effect.void
              : Effect.fail(`not yet: ${written} of ${n} writes` as const)
        ).pipe(Effect.retry({ times: 500, schedule: Schedule.spaced("10 millis") }))
      yield* untilWritten(3)

      const oldPort = topo.nodes[0]!.port
      const start = Date.now()
      if (how === "SIGKILL") {
        yield* topo.nodes[0]!.process.kill
      } else {
        yield* topo.sentinelCommand(0, ["SENTINEL", "FAILOVER", topo.masterName])
        // The old master keeps serving until it is demoted: measure from the switch on.
        yield* topo.waitForNewMaster(oldPort)
      }
      // The first write after the loss, retried under the policy: its completion is the recovery.
      yield* backend.store(`probe-${run}`, "PROGRESS", { how })
      const recoveryMillis = Date.now() - start

      const newMaster = yield* topo.waitForNewMaster(oldPort)
      assert.notStrictEqual(newMaster.port, oldPort)
      // The write landed on the promoted replica, and the backend now talks to it only.
      const onNew = yield* topo.nodeCommand(newMaster.port, ["GET", `celery-task-meta-probe-${run}`])
      assert.include(String(onNew), '"status": "PROGRESS"')
      assert.deepStrictEqual(yield* sentinel.discover, { host: "127.0.0.1", port: newMaster.port })

      // The writer never gave up, and its last acknowledged write is on the new master.
      const before = written
      yield* untilWritten(before + 3)
      stop = true
      yield* within(Fiber.join(writer), 10_000, "the writer to stop")
      const last = yield* topo.nodeCommand(newMaster.port, ["GET", `celery-task-meta-${ticker}`])
      assert.include(String(last), `"result": {"n": ${written}}`)

      for (const [i, id] of ids.entries()) yield* backend.markAsDone(id, { i, after: how })
      yield* within(Fiber.join(watch), 20_000, "the watch to end on the final states")
      const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
      for (const [i, id] of ids.entries()) {
        const finals = seen.filter((e) => e.startsWith(`${id} SUCCESS `))
        assert.deepStrictEqual(
          finals,
          [`${id} SUCCESS ${JSON.stringify({ i, after: how })}`],
          `${id}: ${seen.join("\n")}`
        )
      }
      // Nothing of ours is left connected to the old master (the sentinels' own links are).
      const oldClients =
        how === "SIGKILL" ? [] : String(yield* topo.nodeCommand(oldPort, ["CLIENT", "LIST"])).split("\n")
      const ours = oldClients.filter(
        (line) =>
          line.includes(" cmd=") &&
          !line.includes(" name=sentinel-") &&
          !/ cmd=(client|replconf|psync|sync)\b/.test(line)
      )
      assert.deepStrictEqual(ours, [], oldClients.join("\n"))
      return { recoveryMillis, newMasterPort: newMaster.port } satisfies RunResult
    })
  ).pipe(quietly)

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : Math.round((s[mid - 1]! + s[mid]!) / 2)
}

describe.concurrent("Sentinel failover", () => {
  it.live(
    "SIGKILL of the master: writes resume and the watch gets every final state (3 runs, recovery measured)",
    () =>
      Effect.gen(function* () {
        const runs = yield* Effect.all([failoverRun("SIGKILL"), failoverRun("SIGKILL"), failoverRun("SIGKILL")], {
          concurrency: "unbounded"
        })
        const times = runs.map((r) => r.recoveryMillis)
        console.log(
          `Sentinel recovery after SIGKILL of the master (kill → first successful write): ${times.join(" ms, ")} ms; median ${median(times)} ms`
        )
        // Well inside the retry budget (80 × 0.25 s ≈ 20 s, like Celery's default ≈ 19 s).
        for (const t of times) assert.isBelow(t, 20_000)
      }),
    90_000
  )

  it.live(
    "graceful SENTINEL FAILOVER: writes resume and the watch gets every final state",
    () =>
      Effect.gen(function* () {
        const { recoveryMillis } = yield* failoverRun("SENTINEL FAILOVER")
        console.log(`Sentinel recovery after SENTINEL FAILOVER: ${recoveryMillis} ms`)
        assert.isBelow(recoveryMillis, 20_000)
      }),
    60_000
  )

  it.live(
    "the +switch-master watcher survives its sentinel's death and closes connections to the old master (watching, connections and switches metrics)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const topo = yield* sentinelTopology()
          const name = topo.masterName
          const sentinels = topo.sentinels.map((s) => ({ host: s.host, port: s.port }))
          const sentinel = yield* Sentinel.make({ sentinels, masterName: name })
          const watchingOn = (index: number) =>
            Metrics.until(
              Effect.map(Metrics.watchingOn(name, sentinels[index]!), (n) => n === 1),
              `watching on sentinel ${index}`
            )
          yield* watchingOn(0)
          // Its sentinel dies: the watcher moves on to the next one, and no longer counts on the first.
          yield* topo.sentinels[0]!.process.kill
          yield* watchingOn(1)
          assert.strictEqual(yield* Metrics.watchingOn(name, sentinels[0]!), 0)

          // An idle connection to the master, made by the connector.
          const client = yield* sentinel.connect
          assert.strictEqual(yield* Metrics.connections(name), 1)
          assert.strictEqual(yield* Metrics.switches(name), 0)
          yield* topo.sentinelCommand(1, ["SENTINEL", "FAILOVER", name])
          yield* topo.waitForNewMaster(topo.nodes[0]!.port)
          yield* Effect.suspend(() => (client.isOpen ? Effect.fail("still open" as const) : Effect.void)).pipe(
            Effect.retry({ times: 200, schedule: Schedule.spaced("50 millis") })
          )
          // A failover is one +switch-master event; each sentinel the watcher hears it from says it once.
          assert.strictEqual(yield* Metrics.switches(name), 1)
          assert.strictEqual(yield* Metrics.connections(name), 0)
        })
      ).pipe(Metrics.isolated),
    60_000
  )
})
