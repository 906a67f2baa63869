/**
 * The conformance suite: one set of @effect/vitest tests that every `ResultBackend` +
 * `ResultConsumer` layer must pass (memory, Redis, Sentinel). Call `suite(name, makeLayer)` from a
 * test file; it registers `describe` / `it.layer` blocks, one per option variant.
 *
 * The backend under test also provides `Hooks`: raw access to the store (to write corrupt values,
 * read exact bytes and TTLs) and a way to let time pass.
 *
 * Rules the tests follow so they hold on real-time backends too:
 * - every id is a fresh UUID, so tests can run concurrently on one server;
 * - synchronization is on the backend's own signals (a watch's first element, a subscription
 *   count), never on sleeps; every wait is bounded by a real-time limit (`config.timeout`);
 * - backend timeouts appear only in the tests about timeouts, which let time pass with
 *   `Hooks.elapse` until the operation gives up.
 *
 * Semantics fixed here for every backend: a value that cannot be decoded is emitted as a `Left`;
 * `getMany` counts that task as finished, `watch` keeps watching it until a ready state.
 *
 * Needs `@effect/vitest` (an optional peer dependency of this package). Usage, in a test file:
 *
 * ```ts
 * Conformance.suite("Redis", (options) =>
 *   Layer.provideMerge(redisHooks(options), RedisBackend.layer(options)).pipe(Layer.provide(server)),
 *   { live: true })
 * ```
 */
import { assert, describe, it as vitestIt, layer } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestServices from "effect/TestServices"
import { type BackendOptions, MAX_EXPIRES_SECONDS } from "../BackendOptions.js"
import type { DecodeError, TimeoutError } from "../Errors.js"
import { RemoteException } from "../Errors.js"
import { globalPrefix, type KeyLayout } from "../Keys.js"
import type { ResultRef, TaskMeta } from "../Meta.js"
import { itemTaskId as idOf, ResultBackend } from "../ResultBackend.js"
import type { ChordProgress, ResultBackend as ResultBackendShape } from "../ResultBackend.js"
import { ResultConsumer } from "../ResultConsumer.js"
import * as TaskState from "../TaskState.js"
import * as TelemetryConformance from "./TelemetryConformance.js"

// ---------------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------------

/** What the suite needs from the store beyond the public API. */
export interface Hooks {
  /** The key layout the backend uses (with its `global_keyprefix`). */
  readonly keys: KeyLayout
  /** Write raw bytes under a key, without TTL and without publishing (Redis `SET`). */
  readonly writeRaw: (key: string, value: string) => Effect.Effect<void, unknown>
  /** The raw string under a key (Redis `GET`); none when missing. */
  readonly readRaw: (key: string) => Effect.Effect<Option.Option<string>, unknown>
  /** The remaining TTL in seconds; none when the key is missing or has no TTL. */
  readonly ttl: (key: string) => Effect.Effect<Option.Option<number>, unknown>
  /** Let time pass for the backend: `TestClock.adjust` in memory, a real sleep on a server. */
  readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void, unknown>
  /** How many subscriptions listen to a task's channel (Redis `PUBSUB NUMSUB`), for leak checks. */
  readonly subscriberCount?: ((taskId: string) => Effect.Effect<number, unknown>) | undefined
}

export const Hooks: Context.Tag<Hooks, Hooks> = Context.GenericTag<Hooks>("@effect-celery/core/Conformance/Hooks")

export interface SuiteConfig {
  /** The backend runs on real timers (a server): tests run without the TestClock. Default false. */
  readonly live?: boolean | undefined
  /** Bound of every wait in a test, and of building a layer. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The `global_keyprefix` of the prefix block. Default "conformance"; a Redis Cluster's single-slot
   * layout needs a hash-tagged one such as "{conformance}:".
   */
  readonly globalKeyprefix?: string | undefined
  /**
   * Set for a backend that refuses chords (a Redis Cluster's spread layout): the chord cases are
   * replaced by one asserting that `setChordSize`, `addToChord` and `onChordPartReturn` each fail
   * with an error this accepts, and the other cases leave out their chord steps.
   */
  readonly chordsRejected?: ((error: unknown) => boolean) | undefined
}

/** What a backend layer under test provides: both services and the suite's `Hooks`. */
export type Services = ResultBackend | ResultConsumer | Hooks

/** Builds the layer under test for one option variant. */
export type MakeLayer = (options: BackendOptions) => Layer.Layer<Services, unknown>

type It = Vitest.MethodsNonLive<Services, boolean>

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const id = (label: string): string => `${label}-${randomUUID()}`

const exc = (excType: string, excMessage: ReadonlyArray<unknown>, excModule: string): RemoteException =>
  new RemoteException({ excType, excMessage, excModule })

const DATE_DONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/

/** Replace the `date_done` string of raw meta bytes by `<date>` after checking its format. */
const withoutDate = (raw: string): string =>
  raw.replace(/"date_done": "([^"]*)"/, (_, date: string) => {
    assert.match(date, DATE_DONE)
    return '"date_done": "<date>"'
  })

const metaOf = (e: Either.Either<TaskMeta, DecodeError>): TaskMeta => {
  if (Either.isLeft(e)) return assert.fail(`unexpected DecodeError for ${e.left.id}: ${e.left.message}`)
  return e.right
}

const statusOf = (e: Either.Either<TaskMeta, DecodeError>): string =>
  Either.isLeft(e) ? "<DecodeError>" : e.right.status

const makeHelpers = (limit: Duration.Duration) => {
  const limitText = Duration.format(limit)

  /** Fail the test (as a defect) when `self` takes longer than the limit, in real time. */
  const within = <A, E, R>(self: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> =>
    Effect.raceFirst(
      self,
      Effect.sleep(limit).pipe(
        TestServices.provideLive,
        Effect.zipRight(Effect.dieMessage(`${what}: still waiting after ${limitText}`))
      )
    )

  const liveSleep = (millis: number): Effect.Effect<void> => TestServices.provideLive(Effect.sleep(millis))

  /** Poll `check` (every 10 ms of real time) until it holds; dies after the limit. */
  const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string): Effect.Effect<void, E, R> =>
    within(
      Effect.gen(function* () {
        while (!(yield* check)) yield* liveSleep(10)
      }),
      what
    )

  /** Run a stream in the background; take its elements one at a time. */
  const tap = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
    Effect.gen(function* () {
      const queue = yield* Queue.unbounded<A>()
      const fiber = yield* Effect.forkScoped(Stream.runForEach(stream, (a) => Queue.offer(queue, a)))
      const next = (what: string): Effect.Effect<A> => within(Queue.take(queue), what)
      const take = (n: number, what: string): Effect.Effect<Array<A>> =>
        Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) => next(`${what} (#${i + 1})`)
        )
      const done = within(Fiber.join(fiber), "the stream to end")
      const drained = Queue.takeAll(queue).pipe(Effect.map(Chunk.toArray))
      return { next, take, done, fiber, drained }
    })

  /** Let time pass until the fiber is done (the TestClock may need the fiber to register first). */
  const elapseUntilDone = <A, E>(
    fiber: Fiber.Fiber<A, E>,
    step: Duration.DurationInput
  ): Effect.Effect<Exit.Exit<A, E>, unknown, Hooks> =>
    Effect.gen(function* () {
      const hooks = yield* Hooks
      for (let i = 0; i < 10; i++) {
        yield* hooks.elapse(step)
        // A real-time backend's own timer fires at about the same moment: give it a little while.
        for (let j = 0; j < 20; j++) {
          const exit = yield* Fiber.poll(fiber)
          if (Option.isSome(exit)) return exit.value
          yield* liveSleep(10)
        }
      }
      return yield* within(Fiber.await(fiber), "the operation to time out")
    })

  /**
   * Best effort: wait until someone listens to the task's channel (e.g. a `waitFor` that has
   * subscribed), so the next write exercises the waiting path. Correctness never depends on it.
   */
  const listening = (taskId: string): Effect.Effect<void, unknown, Hooks> =>
    Effect.gen(function* () {
      const hooks = yield* Hooks
      const count = hooks.subscriberCount
      if (count === undefined) {
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        return
      }
      for (let i = 0; i < 100; i++) {
        if ((yield* count(taskId)) > 0) return
        yield* liveSleep(10)
      }
    })

  /** When the backend can count subscriptions: none is left on these tasks' channels. */
  const noSubscriptions = (taskIds: ReadonlyArray<string>): Effect.Effect<void, unknown, Hooks> =>
    Effect.gen(function* () {
      const count = (yield* Hooks).subscriberCount
      if (count === undefined) return
      for (const taskId of taskIds) {
        yield* eventually(
          Effect.map(count(taskId), (n) => n === 0),
          `the subscriptions of ${taskId} to go`
        )
      }
    })

  return { limit, within, eventually, tap, elapseUntilDone, listening, noSubscriptions }
}

type Helpers = ReturnType<typeof makeHelpers>

/**
 * A TimeoutError names what was missing (`taskIds`, at most ten, and `taskCount`) and how long it
 * waited: at least its timeout (less a timer's millisecond of slack), at most the suite's limit more.
 */
const timedOutOn = (
  error: TimeoutError,
  taskIds: ReadonlyArray<string>,
  taskCount: number,
  limit: Duration.Duration
): void => {
  assert.deepStrictEqual(error.taskIds, taskIds)
  assert.strictEqual(error.taskCount, taskCount)
  assert.isAtLeast(error.elapsedMillis, error.timeoutMillis - 2, "waited the whole timeout")
  assert.isAtMost(error.elapsedMillis, error.timeoutMillis + Duration.toMillis(limit), "and not much longer")
  for (const taskId of taskIds) assert.include(error.message, taskId)
  assert.isTrue(error.message.startsWith(error.celeryMessage.replace(/\.$/, "")), error.message)
}

const services = Effect.all({ backend: ResultBackend, consumer: ResultConsumer, hooks: Hooks })

const completions = (progress: ReadonlyArray<ChordProgress>): Array<ReadonlyArray<unknown>> =>
  progress.flatMap((p) => (p._tag === "Complete" ? [p.results] : []))

const part =
  (backend: ResultBackendShape, groupId: string, bodyTaskId?: string) =>
  (taskId: string, groupIndex: number | undefined, state: string, result: unknown) =>
    backend.onChordPartReturn(
      {
        groupId,
        taskId,
        ...(groupIndex === undefined ? {} : { groupIndex }),
        ...(bodyTaskId === undefined ? {} : { bodyTaskId })
      },
      state,
      result
    )

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/** Register the conformance suite for a backend. */
export const suite = (name: string, makeLayer: MakeLayer, config: SuiteConfig = {}): void => {
  const live = config.live ?? false
  const limit = Duration.decode(config.timeout ?? Duration.seconds(10))
  const h = makeHelpers(limit)
  const block = (title: string, options: BackendOptions, body: (it: It) => void): void =>
    layer(makeLayer(options), { timeout: Duration.sum(limit, Duration.seconds(20)), excludeTestServices: live })(
      title,
      body
    )

  const rejected = config.chordsRejected
  const chords = rejected === undefined
  const prefix = config.globalKeyprefix ?? "conformance"
  describe(name, () => {
    block("default options", {}, (it) => {
      metaTests(it, chords)
      guardTests(it)
      readTests(it, h)
      getManyTests(it, h)
      getAllTests(it, h)
      waitForTests(it, h)
      watchTests(it, h)
      corruptTests(it, h)
      groupTests(it)
      if (rejected === undefined) chordTests(it, h)
      else chordsRejectedTests(it, rejected)
      idTests(it, h)
    })
    block("expires: 2 seconds", { expires: Duration.seconds(2) }, (it) => expiryTests(it, h))
    ;(live ? vitestIt.scopedLive : vitestIt.scoped)(
      "expires out of range: building the backend fails with ImproperlyConfigured",
      () =>
        Effect.gen(function* () {
          const cases: ReadonlyArray<Duration.DurationInput> = [
            -1000,
            "-2 seconds",
            NaN,
            Duration.seconds(MAX_EXPIRES_SECONDS + 2)
          ]
          for (const expires of cases) {
            const exit = yield* h.within(Effect.exit(Layer.build(makeLayer({ expires }))), "building the layer")
            assert.isTrue(Exit.isFailure(exit), `expires ${String(expires)} was accepted`)
            if (Exit.isFailure(exit)) {
              const error = Option.getOrUndefined(Cause.failureOption(exit.cause)) as
                { _tag?: string; message?: string } | undefined
              assert.strictEqual(error?._tag, "ImproperlyConfigured", Cause.pretty(exit.cause))
              assert.include(error?.message, "result_expires out of range")
            }
          }
        }),
      Duration.toMillis(Duration.sum(limit, Duration.seconds(20)))
    )
    block("expires: null, maxValueSize: 1024", { expires: null, maxValueSize: 1024 }, (it) => noExpiryTests(it, chords))
    block("result_extended", { resultExtended: true }, (it) => extendedTests(it))
    if (chords) block("result_chord_ordered: false", { chordOrdered: false }, (it) => unorderedChordTests(it))
    block("global_keyprefix", { keys: { globalKeyprefix: prefix } }, (it) =>
      prefixTests(it, h, globalPrefix({ globalKeyprefix: prefix }), chords)
    )
  })
  // Spans and metrics, kept in their own module (TelemetryConformance.ts).
  describe(`${name}: telemetry`, () => {
    block("metrics: true", { metrics: true }, (it) => TelemetryConformance.metricsTests(it, h))
    block("default options", {}, (it) => TelemetryConformance.defaultTests(it))
  })
}

// ---------------------------------------------------------------------------------------------
// Meta round trips and bytes
// ---------------------------------------------------------------------------------------------

const metaTests = (it: It, chords: boolean): void => {
  it.effect("round trip of every built-in state and a custom one", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const states = [...TaskState.ALL_STATES, TaskState.REJECTED, TaskState.IGNORED, "PROGRESS"]
      for (const state of states) {
        const taskId = id(state.toLowerCase())
        const result = TaskState.isException(state)
          ? exc("ValueError", [`bad ${state}`], "builtins")
          : { state, current: 3, total: 10, ok: true, note: "café", list: [1, "two", null] }
        const traceback = TaskState.isException(state) ? `Traceback (most recent call last):\n  ${state}\n` : null
        yield* backend.store(taskId, state, result, { traceback })
        const meta = yield* backend.get(taskId)
        assert.strictEqual(meta.taskId, taskId)
        assert.strictEqual(meta.status, state)
        assert.deepStrictEqual(meta.result, result, `result of ${state}`)
        if (TaskState.isException(state)) assert.instanceOf(meta.result, RemoteException)
        assert.strictEqual(meta.traceback, traceback)
        assert.isNull(meta.children, "no request: children is null")
        if (TaskState.isReady(state)) assert.match(meta.dateDone ?? "", DATE_DONE, `date_done of ${state}`)
        else assert.isNull(meta.dateDone, `no date_done for ${state}`)
        assert.isUndefined(meta.groupId)
        assert.isUndefined(meta.parentId)
        assert.isUndefined(meta.extended)
      }
    })
  )

  it.effect("markAs* write Celery's results", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const [started, done, failed, retried, revoked, revokedDefault] = ["s", "d", "f", "r", "v", "w"].map(id)
      const error = exc("PaymentError", ["card declined", 42, "EUR"], "billing.tasks")
      yield* backend.markAsStarted(started!, { pid: 8994, hostname: "w1@host" })
      yield* backend.markAsDone(done!, 42, { request: {} })
      yield* backend.markAsFailure(failed!, error, { traceback: "Traceback (most recent call last):\n" })
      yield* backend.markAsRetry(retried!, error)
      yield* backend.markAsRevoked(revoked!, "terminated")
      yield* backend.markAsRevoked(revokedDefault!)

      const s = yield* backend.get(started!)
      assert.strictEqual(s.status, "STARTED")
      assert.deepStrictEqual(s.result, { pid: 8994, hostname: "w1@host" })
      assert.isNull(s.dateDone)

      const d = yield* backend.get(done!)
      assert.strictEqual(d.status, "SUCCESS")
      assert.strictEqual(d.result, 42)
      assert.deepStrictEqual(d.children, [], "a request: children is []")
      assert.match(d.dateDone ?? "", DATE_DONE)

      const f = yield* backend.get(failed!)
      assert.strictEqual(f.status, "FAILURE")
      assert.deepStrictEqual(f.result, error)
      assert.strictEqual(f.traceback, "Traceback (most recent call last):\n")

      const r = yield* backend.get(retried!)
      assert.strictEqual(r.status, "RETRY")
      assert.deepStrictEqual(r.result, error)
      assert.isNull(r.dateDone, "RETRY is not ready")

      const v = yield* backend.get(revoked!)
      assert.strictEqual(v.status, "REVOKED")
      assert.deepStrictEqual(v.result, exc("TaskRevokedError", ["terminated"], "celery.exceptions"))
      assert.isNull(v.traceback)
      assert.match(v.dateDone ?? "", DATE_DONE)

      const w = yield* backend.get(revokedDefault!)
      assert.deepStrictEqual(w.result, exc("TaskRevokedError", ["revoked"], "celery.exceptions"))
    })
  )

  it.effect("request fields: children, group_id, parent_id, and no extended fields by default", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId, parentId, childId] = ["t", "g", "p", "c"].map(id)
      const child: ResultRef = { id: childId!, parent: null, children: null }
      yield* backend.store(taskId!, "SUCCESS", 1, {
        request: {
          group: groupId!,
          parentId: parentId!,
          children: [child],
          task: "tasks.add",
          args: [1],
          hostname: "w"
        }
      })
      const meta = yield* backend.get(taskId!)
      assert.strictEqual(meta.groupId, groupId)
      assert.strictEqual(meta.parentId, parentId)
      assert.deepStrictEqual(meta.children, [[[childId, null], null]])
      assert.isUndefined(meta.extended, "result_extended is off by default")
      const raw = Option.getOrThrow(yield* hooks.readRaw(hooks.keys.task(taskId!)))
      assert.strictEqual(
        withoutDate(raw),
        `{"status": "SUCCESS", "result": 1, "traceback": null, "children": [[["${childId}", null], null]], ` +
          `"date_done": "<date>", "group_id": "${groupId}", "parent_id": "${parentId}", "task_id": "${taskId}"}`
      )
    })
  )

  it.effect("stored bytes are exactly Celery's JSON", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [ok, failed, progress] = ["ok", "failed", "progress"].map(id)
      yield* backend.store(ok!, "SUCCESS", { charged: 42, currency: "EUR", ok: true, note: "café" })
      yield* backend.markAsFailure(failed!, exc("PaymentError", ["card declined", 42, "EUR"], "billing.tasks"), {
        traceback: "Traceback (most recent call last):\n",
        request: {}
      })
      yield* backend.store(progress!, "PROGRESS", { current: 3, total: 10 })
      const raw = (taskId: string) => Effect.map(hooks.readRaw(hooks.keys.task(taskId)), Option.getOrThrow)
      assert.strictEqual(
        withoutDate(yield* raw(ok!)),
        `{"status": "SUCCESS", "result": {"charged": 42, "currency": "EUR", "ok": true, "note": "caf\\u00e9"}, ` +
          `"traceback": null, "children": null, "date_done": "<date>", "task_id": "${ok}"}`
      )
      assert.strictEqual(
        withoutDate(yield* raw(failed!)),
        `{"status": "FAILURE", "result": {"exc_type": "PaymentError", "exc_message": ["card declined", 42, "EUR"], ` +
          `"exc_module": "billing.tasks"}, "traceback": "Traceback (most recent call last):\\n", "children": [], ` +
          `"date_done": "<date>", "task_id": "${failed}"}`
      )
      assert.strictEqual(
        yield* raw(progress!),
        `{"status": "PROGRESS", "result": {"current": 3, "total": 10}, "traceback": null, "children": null, ` +
          `"date_done": null, "task_id": "${progress}"}`
      )
    })
  )

  it.effect("results, groups and chord keys get result_expires as TTL (default one day)", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId] = ["t", "g"].map(id)
      yield* backend.store(taskId!, "SUCCESS", 1)
      yield* backend.saveGroup(groupId!, [taskId!])
      if (chords) {
        yield* backend.setChordSize(groupId!, 2)
        yield* part(backend, groupId!)(taskId!, 0, "SUCCESS", 1)
      }
      const chordKeys = chords ? [hooks.keys.chordSize(groupId!), hooks.keys.chordJoin(groupId!)] : []
      for (const key of [hooks.keys.task(taskId!), hooks.keys.group(groupId!), ...chordKeys]) {
        const ttl = yield* hooks.ttl(key)
        assert.isTrue(Option.isSome(ttl), `${key} has a TTL`)
        assert.isAbove(Option.getOrThrow(ttl), 86400 - 60, key)
        assert.isAtMost(Option.getOrThrow(ttl), 86400, key)
      }
    })
  )
}

// ---------------------------------------------------------------------------------------------
// The SUCCESS guard, forget, missing keys
// ---------------------------------------------------------------------------------------------

const guardTests = (it: It): void => {
  it.effect("SUCCESS is never overwritten, by FAILURE, STARTED or another SUCCESS", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const taskId = id("guard")
      yield* backend.markAsDone(taskId, "first")
      const before = yield* hooks.readRaw(hooks.keys.task(taskId))
      yield* backend.markAsFailure(taskId, exc("ValueError", ["late"], "builtins"))
      yield* backend.markAsStarted(taskId, { pid: 1, hostname: "h" })
      yield* backend.markAsDone(taskId, "second")
      yield* backend.markAsRevoked(taskId)
      const meta = yield* backend.get(taskId)
      assert.strictEqual(meta.status, "SUCCESS")
      assert.strictEqual(meta.result, "first")
      assert.deepStrictEqual(yield* hooks.readRaw(hooks.keys.task(taskId)), before, "the bytes are untouched")
    })
  )

  it.effect("FAILURE and other states can be overwritten", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("overwrite")
      yield* backend.markAsFailure(taskId, exc("ValueError", ["x"], "builtins"))
      yield* backend.markAsStarted(taskId, { pid: 2, hostname: "h" })
      assert.strictEqual((yield* backend.get(taskId)).status, "STARTED")
      yield* backend.store(taskId, "PROGRESS", { done: 1 })
      assert.strictEqual((yield* backend.get(taskId)).status, "PROGRESS")
      yield* backend.markAsDone(taskId, 7)
      const meta = yield* backend.get(taskId)
      assert.strictEqual(meta.status, "SUCCESS")
      assert.strictEqual(meta.result, 7)
    })
  )

  it.effect("forget deletes the result: it reads as PENDING again and can be stored again", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const taskId = id("forget")
      yield* backend.markAsDone(taskId, 1)
      yield* backend.forget(taskId)
      assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.task(taskId))))
      const meta = yield* backend.get(taskId)
      assert.strictEqual(meta.status, "PENDING")
      assert.isNull(meta.result)
      yield* backend.forget(taskId)
      yield* backend.markAsDone(taskId, 2)
      assert.strictEqual((yield* backend.get(taskId)).result, 2)
    })
  )

  it.effect(
    "exists: false for an unknown id (which get reads as PENDING), true once anything is stored, false after forget",
    () =>
      Effect.gen(function* () {
        const { backend, hooks } = yield* services
        const taskId = id("exists")
        assert.isFalse(yield* backend.exists(taskId))
        assert.strictEqual((yield* backend.get(taskId)).status, "PENDING")
        yield* backend.store(taskId, "PENDING", null)
        assert.isTrue(yield* backend.exists(taskId), "a stored PENDING exists")
        yield* backend.markAsDone(taskId, 1)
        assert.isTrue(yield* backend.exists(taskId))
        yield* backend.forget(taskId)
        assert.isFalse(yield* backend.exists(taskId))
        // Any value at the key counts, even one that is not a meta.
        const corrupt = id("exists-corrupt")
        yield* hooks.writeRaw(hooks.keys.task(corrupt), "not json")
        assert.isTrue(yield* backend.exists(corrupt))
        // The task key only: a group of that id is not a task result.
        const gid = id("exists-group")
        yield* backend.saveGroup(gid, [taskId])
        assert.isFalse(yield* backend.exists(gid))
      })
  )

  it.effect("a missing task reads as PENDING with a null result", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("missing")
      const meta = yield* backend.get(taskId)
      assert.strictEqual(meta.taskId, taskId)
      assert.strictEqual(meta.status, "PENDING")
      assert.isNull(meta.result)
      assert.isNull(meta.dateDone)
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Reads that wait
// ---------------------------------------------------------------------------------------------

const readTests = (it: It, h: Helpers): void => {
  it.effect("get reads what store wrote, concurrently for many tasks", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const ids = Array.from({ length: 50 }, (_, i) => id(`many${i}`))
      yield* Effect.forEach(ids, (taskId, i) => backend.markAsDone(taskId, i), { concurrency: "unbounded" })
      const metas = yield* h.within(Effect.forEach(ids, backend.get, { concurrency: "unbounded" }), "50 gets")
      assert.deepStrictEqual(
        metas.map((m) => m.result),
        ids.map((_, i) => i)
      )
    })
  )
}

const getManyTests = (it: It, h: Helpers): void => {
  it.scoped("getMany: ready results first in the asked order, then the others as they become ready", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const [a, b, c, d] = ["a", "b", "c", "d"].map(id) as [string, string, string, string]
      yield* backend.markAsDone(c, "c")
      yield* backend.markAsStarted(b, { pid: 1, hostname: "h" })
      yield* backend.markAsDone(a, "a")
      const results = yield* h.tap(backend.getMany([a, b, c, d]))
      const first = yield* results.take(2, "the results ready at the start")
      assert.deepStrictEqual(first.map(idOf), [a, c])
      assert.deepStrictEqual(
        first.map((e) => metaOf(e).result),
        ["a", "c"]
      )
      yield* backend.markAsDone(d, "d")
      assert.strictEqual(idOf(yield* results.next("d once ready")), d)
      yield* backend.store(b, "PROGRESS", { step: 2 })
      yield* backend.markAsFailure(b, exc("ValueError", ["b"], "builtins"))
      const last = metaOf(yield* results.next("b once failed"))
      assert.strictEqual(last.taskId, b)
      assert.strictEqual(last.status, "FAILURE", "only ready states are emitted")
      yield* results.done
      assert.deepStrictEqual(yield* results.drained, [])
      yield* h.noSubscriptions([a, b, c, d])
    })
  )

  it.effect("getMany of ready results completes without waiting an interval", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const ids = ["a", "b", "c"].map(id)
      yield* Effect.forEach(ids, (taskId) => backend.markAsDone(taskId, taskId))
      // Anything that sleeps the (long) poll interval after the last result misses the deadline.
      const out = yield* Stream.runCollect(backend.getMany(ids, { interval: Duration.minutes(1) })).pipe((self) =>
        h.within(self, "getMany of ready results")
      )
      assert.deepStrictEqual(
        Chunk.toArray(out).map((e) => metaOf(e).result),
        ids
      )
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(backend.getMany([]))), 0)
    })
  )

  it.effect("getMany fails with TimeoutError when results are still missing", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const [ready, never] = ["ready", "never"].map(id) as [string, string]
      yield* backend.markAsDone(ready, 1)
      const seen: Array<string> = []
      const fiber = yield* backend
        .getMany([ready, never], { timeout: Duration.seconds(1), interval: Duration.millis(100) })
        .pipe(
          Stream.runForEach((e) => Effect.sync(() => seen.push(idOf(e)))),
          Effect.fork
        )
      const exit = yield* h.elapseUntilDone(fiber, Duration.seconds(1))
      assert.deepStrictEqual(seen, [ready], "the ready result came before the timeout")
      assert.isTrue(Exit.isFailure(exit))
      const failure = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(failure._tag, "TimeoutError")
      if (failure._tag === "TimeoutError") {
        assert.strictEqual(failure.celeryMessage, "Operation timed out (1.0)")
        assert.strictEqual(failure.timeoutMillis, 1000)
        timedOutOn(failure, [never], 1, h.limit)
      }
    })
  )
}

const getAllTests = (it: It, h: Helpers): void => {
  it.effect(
    "getAll: every result in the asked order, an entry per id given (a pending one too), once the last is ready",
    () =>
      Effect.gen(function* () {
        const { backend, hooks } = yield* services
        const [a, b, c, bad] = ["a", "b", "c", "bad"].map(id) as [string, string, string, string]
        yield* backend.markAsDone(c, "c")
        yield* backend.markAsStarted(b, { pid: 1, hostname: "h" })
        yield* backend.markAsFailure(a, exc("ValueError", ["a"], "builtins"))
        yield* hooks.writeRaw(hooks.keys.task(bad), "{not json")
        const fiber = yield* Effect.fork(backend.getAll([c, b, a, bad, c, b]))
        yield* h.listening(b)
        yield* backend.store(b, "PROGRESS", { step: 1 })
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "b is not ready yet")
        yield* backend.markAsDone(b, "b")
        const all = yield* h.within(Fiber.join(fiber), "getAll")
        assert.deepStrictEqual(all.map(idOf), [c, b, a, bad, c, b])
        assert.deepStrictEqual(all.map(statusOf), [
          "SUCCESS",
          "SUCCESS",
          "FAILURE",
          "<DecodeError>",
          "SUCCESS",
          "SUCCESS"
        ])
        assert.deepStrictEqual(
          [all[0], all[1], all[5]].map((e) => metaOf(e!).result),
          ["c", "b", "b"]
        )
        assert.deepStrictEqual(yield* h.within(backend.getAll([]), "getAll of no ids"), [])
        yield* h.noSubscriptions([a, b, c, bad])
      })
  )

  it.effect("getAll of ready results matches getMany's and waits no interval", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const ids = Array.from({ length: 20 }, (_, i) => id(`all${i}`))
      yield* Effect.forEach(ids, (taskId, i) => backend.markAsDone(taskId, i), { concurrency: "unbounded" })
      const all = yield* h.within(backend.getAll(ids, { interval: Duration.minutes(1) }), "getAll of ready results")
      const many = yield* h.within(Stream.runCollect(backend.getMany(ids)), "getMany of ready results")
      assert.deepStrictEqual(all, Chunk.toArray(many))
      assert.deepStrictEqual(
        all.map((e) => metaOf(e).result),
        ids.map((_, i) => i)
      )
    })
  )

  it.effect("getAll of a read large enough to go in parts keeps the asked order across the parts", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      // Redis reads this many keys as several MGETs; an order slip at a part's edge would show.
      const ids = Array.from({ length: 2500 }, (_, i) => id(`part${i}`))
      yield* Effect.forEach(ids, (taskId, i) => backend.markAsDone(taskId, i), { concurrency: 100, discard: true })
      yield* hooks.writeRaw(hooks.keys.task(ids[1234]!), "{not json")
      const asked = [...ids, ids[0]!]
      const all = yield* h.within(backend.getAll(asked), "getAll of 2,500")
      assert.deepStrictEqual(all.map(idOf), asked)
      assert.deepStrictEqual(
        all.map(statusOf),
        asked.map((_, i) => (i === 1234 ? "<DecodeError>" : "SUCCESS"))
      )
      const resultOf = (e: Either.Either<TaskMeta, DecodeError>): unknown =>
        Either.isLeft(e) ? "<DecodeError>" : e.right.result
      assert.deepStrictEqual(
        all.map(resultOf),
        asked.map((_, i) => (i === 1234 ? "<DecodeError>" : i % ids.length))
      )
    })
  )

  it.effect("getAll fails with TimeoutError when results are still missing", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const [ready, never] = ["ready", "never"].map(id) as [string, string]
      yield* backend.markAsDone(ready, 1)
      const fiber = yield* Effect.fork(backend.getAll([ready, never], { timeout: Duration.seconds(1) }))
      const exit = yield* h.elapseUntilDone(fiber, Duration.seconds(1))
      assert.isTrue(Exit.isFailure(exit))
      const failure = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(failure._tag, "TimeoutError")
      if (failure._tag === "TimeoutError") {
        assert.strictEqual(failure.celeryMessage, "Operation timed out (1.0)")
        assert.strictEqual(failure.timeoutMillis, 1000)
        timedOutOn(failure, [never], 1, h.limit)
        assert.match(
          failure.message,
          new RegExp(`^Operation timed out \\(1\\.0\\): 1 task not ready after \\d+(\\.\\d+)? s: ${never}\\.$`)
        )
      }
      yield* h.noSubscriptions([never])
    })
  )

  it.effect(
    "getAll and getMany of many missing tasks: TimeoutError keeps the count and the first ten, in asked order",
    () =>
      Effect.gen(function* () {
        const { backend } = yield* services
        const ids = Array.from({ length: 25 }, (_, i) => id(`many${i}`))
        const ready = new Set([ids[0]!, ids[3]!, ids[24]!])
        yield* Effect.forEach(ready, (taskId) => backend.markAsDone(taskId, 1), { discard: true })
        const missing = ids.filter((taskId) => !ready.has(taskId))
        const all = yield* Effect.fork(backend.getAll(ids, { timeout: Duration.millis(500) }))
        const many = yield* Effect.fork(Stream.runDrain(backend.getMany(ids, { timeout: Duration.millis(500) })))
        const fibers: ReadonlyArray<
          Fiber.Fiber<unknown, Effect.Effect.Error<ReturnType<ResultBackendShape["getAll"]>>>
        > = [all, many]
        for (const fiber of fibers) {
          yield* h.elapseUntilDone(fiber, Duration.millis(500))
          const failure = yield* Effect.flip(Fiber.join(fiber))
          assert.strictEqual(failure._tag, "TimeoutError")
          if (failure._tag !== "TimeoutError") continue
          assert.strictEqual(failure.celeryMessage, "Operation timed out (0.5)")
          timedOutOn(failure, missing.slice(0, 10), 22, h.limit)
          assert.include(failure.message, `: 22 tasks not ready after `)
          assert.include(failure.message, `${missing.slice(0, 10).join(", ")} and 12 more.`)
        }
      })
  )
}

const waitForTests = (it: It, h: Helpers): void => {
  it.effect("waitFor returns the SUCCESS meta once stored, after intermediate states", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("wait")
      const fiber = yield* Effect.fork(backend.waitFor(taskId))
      yield* h.listening(taskId)
      yield* backend.markAsStarted(taskId, { pid: 3, hostname: "h" })
      yield* backend.store(taskId, "PROGRESS", { step: 1 })
      yield* backend.markAsDone(taskId, { answer: 42 })
      const meta = yield* h.within(Fiber.join(fiber), "waitFor")
      assert.strictEqual(meta.status, "SUCCESS")
      assert.deepStrictEqual(meta.result, { answer: 42 })
      yield* h.noSubscriptions([taskId])
    })
  )

  it.effect("waitFor of a task already done returns at once", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("done")
      yield* backend.markAsDone(taskId, "x")
      const meta = yield* h.within(backend.waitFor(taskId), "waitFor of a finished task")
      assert.strictEqual(meta.result, "x")
    })
  )

  it.effect("waitFor of a FAILURE fails with TaskFailedError carrying the remote exception", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("fail")
      const fiber = yield* Effect.fork(Effect.flip(backend.waitFor(taskId)))
      yield* h.listening(taskId)
      yield* backend.markAsFailure(taskId, exc("MyError", ["x", 1], "tasks"), { traceback: "Traceback\n" })
      const error = yield* h.within(Fiber.join(fiber), "waitFor")
      assert.strictEqual(error._tag, "TaskFailedError")
      if (error._tag !== "TaskFailedError") return
      assert.strictEqual(error.taskId, taskId)
      assert.strictEqual(error.state, "FAILURE")
      assert.strictEqual(error.exception?.excType, "MyError")
      assert.deepStrictEqual(error.exception?.excMessage, ["x", 1])
      assert.strictEqual(error.exception?.excModule, "tasks")
      assert.strictEqual(error.traceback, "Traceback\n")
    })
  )

  it.effect("waitFor of a REVOKED task fails with TaskFailedError(TaskRevokedError)", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("revoked")
      yield* backend.markAsRevoked(taskId, "expired")
      const error = yield* h.within(Effect.flip(backend.waitFor(taskId)), "waitFor")
      assert.strictEqual(error._tag, "TaskFailedError")
      if (error._tag !== "TaskFailedError") return
      assert.strictEqual(error.state, "REVOKED")
      assert.deepStrictEqual(error.exception, exc("TaskRevokedError", ["expired"], "celery.exceptions"))
    })
  )

  it.effect("waitFor times out with Celery's TimeoutError('The operation timed out.')", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const taskId = id("slow")
      yield* backend.markAsStarted(taskId, { pid: 4, hostname: "h" })
      const fiber = yield* Effect.fork(backend.waitFor(taskId, { timeout: Duration.seconds(1) }))
      const exit = yield* h.elapseUntilDone(fiber, Duration.seconds(1))
      assert.isTrue(Exit.isFailure(exit), "waitFor gave up")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TimeoutError")
      if (error._tag !== "TimeoutError") return
      assert.strictEqual(error.celeryMessage, "The operation timed out.")
      assert.strictEqual(error.timeoutMillis, 1000)
      timedOutOn(error, [taskId], 1, h.limit)
      assert.match(
        error.message,
        new RegExp(`^The operation timed out\\. Task ${taskId} not ready after \\d+(\\.\\d+)? s\\.$`)
      )
      yield* h.noSubscriptions([taskId])
    })
  )
}

const watchTests = (it: It, h: Helpers): void => {
  it.scoped("watch emits every state change in order and ends on the ready state", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const taskId = id("watch")
      yield* backend.markAsStarted(taskId, { pid: 5, hostname: "h" })
      const events = yield* h.tap(consumer.watch([taskId]))
      assert.strictEqual(statusOf(yield* events.next("the current state")), "STARTED")
      yield* backend.store(taskId, "PROGRESS", { current: 1, total: 2 })
      const progress = metaOf(yield* events.next("PROGRESS"))
      assert.strictEqual(progress.status, "PROGRESS")
      assert.deepStrictEqual(progress.result, { current: 1, total: 2 })
      yield* backend.markAsDone(taskId, "ok")
      const done = metaOf(yield* events.next("SUCCESS"))
      assert.strictEqual(done.status, "SUCCESS")
      assert.strictEqual(done.result, "ok")
      yield* events.done
      assert.deepStrictEqual(yield* events.drained, [], "nothing after the ready state")
      yield* h.noSubscriptions([taskId])
    })
  )

  it.effect("watch of an already finished task emits it and ends", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const taskId = id("finished")
      yield* backend.markAsDone(taskId, 1)
      const out = yield* h.within(Stream.runCollect(consumer.watch([taskId])), "watch")
      assert.deepStrictEqual(Chunk.toArray(out).map(statusOf), ["SUCCESS"])
      assert.strictEqual(Chunk.size(yield* h.within(Stream.runCollect(consumer.watch([])), "watch of nothing")), 0)
    })
  )

  it.scoped("watch of several tasks ends only when all of them are ready", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const [a, b, c] = ["a", "b", "c"].map(id) as [string, string, string]
      yield* backend.markAsStarted(a, { pid: 6, hostname: "h" })
      yield* backend.markAsStarted(b, { pid: 7, hostname: "h" })
      yield* backend.markAsRevoked(c)
      const events = yield* h.tap(consumer.watch([a, b, c]))
      const first = yield* events.take(3, "the current states")
      assert.sameMembers(
        first.map((e) => `${idOf(e)}:${statusOf(e)}`),
        [`${a}:STARTED`, `${b}:STARTED`, `${c}:REVOKED`]
      )
      yield* backend.markAsDone(a, "a")
      assert.strictEqual(`${idOf(yield* events.next("a"))}`, a)
      yield* backend.markAsFailure(b, exc("KeyError", [], "builtins"))
      const last = metaOf(yield* events.next("b"))
      assert.strictEqual(last.taskId, b)
      assert.strictEqual(last.status, "FAILURE")
      yield* events.done
      yield* h.noSubscriptions([a, b, c])
    })
  )

  it.scoped("watch of an id given twice follows it once and ends when every id is ready", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const [a, b] = ["twice-a", "twice-b"].map(id) as [string, string]
      yield* backend.markAsStarted(a, { pid: 8, hostname: "h" })
      const events = yield* h.tap(consumer.watch([a, b, a]))
      const first = yield* events.next("a started")
      assert.strictEqual(`${idOf(first)}:${statusOf(first)}`, `${a}:STARTED`)
      yield* backend.markAsDone(a, "a")
      yield* backend.markAsDone(b, "b")
      const rest = yield* events.take(2, "a and b done")
      assert.sameMembers(
        rest.map((e) => `${idOf(e)}:${statusOf(e)}`),
        [`${a}:SUCCESS`, `${b}:SUCCESS`]
      )
      yield* events.done
      assert.deepStrictEqual(yield* events.drained, [])
      yield* h.noSubscriptions([a, b])
    })
  )

  it.scoped("watch with follow keeps going after the ready state", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const taskId = id("follow")
      yield* backend.markAsStarted(taskId, { pid: 8, hostname: "h" })
      const events = yield* h.tap(consumer.watch([taskId], { follow: true }))
      assert.strictEqual(statusOf(yield* events.next("STARTED")), "STARTED")
      yield* backend.markAsDone(taskId, 1)
      assert.strictEqual(statusOf(yield* events.next("SUCCESS")), "SUCCESS")
      // A re-run after forget: only a following watch sees it.
      yield* backend.forget(taskId)
      yield* backend.markAsStarted(taskId, { pid: 9, hostname: "h" })
      const again = metaOf(yield* events.next("STARTED again"))
      assert.strictEqual(again.status, "STARTED")
      assert.deepStrictEqual(again.result, { pid: 9, hostname: "h" })
      assert.isTrue(Option.isNone(yield* Fiber.poll(events.fiber)), "still running")
      yield* Fiber.interrupt(events.fiber)
      yield* h.noSubscriptions([taskId])
    })
  )

  it.scoped("watch does not emit the same stored bytes twice", () =>
    Effect.gen(function* () {
      const { backend, consumer } = yield* services
      const taskId = id("dedupe")
      yield* backend.store(taskId, "PROGRESS", { step: 1 })
      const events = yield* h.tap(consumer.watch([taskId]))
      assert.deepStrictEqual(metaOf(yield* events.next("PROGRESS")).result, { step: 1 })
      // The same bytes again (a repeated update_state) are not a state change.
      yield* backend.store(taskId, "PROGRESS", { step: 1 })
      yield* backend.store(taskId, "PROGRESS", { step: 2 })
      assert.deepStrictEqual(metaOf(yield* events.next("step 2")).result, { step: 2 })
      yield* backend.markAsDone(taskId, "end")
      const rest = [yield* events.next("SUCCESS")]
      yield* events.done
      rest.push(...(yield* events.drained))
      assert.deepStrictEqual(rest.map(statusOf), ["SUCCESS"])
    })
  )
}

const corruptTests = (it: It, h: Helpers): void => {
  it.scoped("a corrupt meta fails only its own task: get, getMany and watch", () =>
    Effect.gen(function* () {
      const { backend, consumer, hooks } = yield* services
      const [bad, good1, good2] = ["bad", "good1", "good2"].map(id) as [string, string, string]
      yield* hooks.writeRaw(hooks.keys.task(bad), '{"status": "STARTED", "result": [1, 2')
      yield* backend.markAsDone(good1, 1)
      yield* backend.markAsDone(good2, 2)

      const error = yield* Effect.flip(backend.get(bad))
      assert.strictEqual(error._tag, "DecodeError")
      if (error._tag === "DecodeError") assert.strictEqual(error.id, bad)
      assert.strictEqual((yield* backend.get(good1)).result, 1)

      const many = Chunk.toArray(yield* h.within(Stream.runCollect(backend.getMany([bad, good1, good2])), "getMany"))
      assert.strictEqual(many.length, 3)
      assert.deepStrictEqual(
        many.filter(Either.isLeft).map((e) => e.left.id),
        [bad]
      )
      assert.sameMembers(
        many.filter(Either.isRight).map((e) => e.right.taskId),
        [good1, good2]
      )

      const waited = yield* h.within(Effect.flip(backend.waitFor(bad)), "waitFor")
      assert.strictEqual(waited._tag, "DecodeError")

      // watch: the Left is emitted, the others complete, and the corrupt task is still watched.
      const events = yield* h.tap(consumer.watch([good1, bad, good2]))
      const watched = yield* events.take(3, "the current values")
      assert.deepStrictEqual(
        watched.filter(Either.isLeft).map((e) => e.left.id),
        [bad]
      )
      assert.sameMembers(
        watched.filter(Either.isRight).map((e) => e.right.taskId),
        [good1, good2]
      )
      yield* backend.markAsDone(bad, "repaired")
      const repaired = metaOf(yield* events.next("the repaired task"))
      assert.strictEqual(repaired.taskId, bad)
      assert.strictEqual(repaired.result, "repaired")
      yield* events.done
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

const groupTests = (it: It): void => {
  it.effect("groups: save, restore, delete; a missing group restores as None", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [groupId, t1, t2, parent] = ["g", "t1", "t2", "p"].map(id) as [string, string, string, string]
      assert.isTrue(Option.isNone(yield* backend.restoreGroup(groupId)))
      const withParent: ResultRef = { id: t2, parent: { id: parent, parent: null, children: null }, children: null }
      yield* backend.saveGroup(groupId, [t1, withParent])
      assert.strictEqual(
        Option.getOrThrow(yield* hooks.readRaw(hooks.keys.group(groupId))),
        `{"result": [["${groupId}", null], [[["${t1}", null], null], [["${t2}", [["${parent}", null], null]], null]]]}`
      )
      const restored = Option.getOrThrow(yield* backend.restoreGroup(groupId))
      assert.strictEqual(restored.groupId, groupId)
      assert.deepStrictEqual(restored.results, [{ id: t1, parent: null, children: null }, withParent])
      yield* backend.deleteGroup(groupId)
      assert.isTrue(Option.isNone(yield* backend.restoreGroup(groupId)))
      assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.group(groupId))))
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Chords
// ---------------------------------------------------------------------------------------------

const chordTests = (it: It, h: Helpers): void => {
  it.effect("chord (ordered): header results in group_index order, whatever the completion order", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const groupId = id("chord")
      const [t0, t1, t2] = ["t0", "t1", "t2"].map(id) as [string, string, string]
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, 3)
      assert.deepStrictEqual(yield* hooks.readRaw(hooks.keys.chordSize(groupId)), Option.some("3"))
      const p2 = yield* report(t2, 2, "SUCCESS", "r2")
      const p0 = yield* report(t0, 0, "SUCCESS", { r: 0 })
      assert.deepStrictEqual(
        [p2, p0],
        [
          { _tag: "Pending", ready: 1 },
          { _tag: "Pending", ready: 2 }
        ]
      )
      const last = yield* report(t1, 1, "SUCCESS", [1])
      assert.deepStrictEqual(last, { _tag: "Complete", results: [{ r: 0 }, [1], "r2"] })
      for (const key of [
        hooks.keys.chordJoin(groupId),
        hooks.keys.chordCounter(groupId),
        hooks.keys.chordSize(groupId)
      ]) {
        assert.isTrue(Option.isNone(yield* hooks.readRaw(key)), `${key} is deleted after success`)
      }
    })
  )

  it.effect("chord fires exactly once when its parts return concurrently", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const groupId = id("concurrent")
      const size = 12
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, size)
      const ids = Array.from({ length: size }, (_, i) => id(`p${i}`))
      const progress = yield* h.within(
        Effect.forEach(
          ids.map((taskId, i) => [taskId, i] as const).reverse(),
          ([taskId, i]) => report(taskId, i, "SUCCESS", i),
          {
            concurrency: "unbounded"
          }
        ),
        "the chord parts"
      )
      const done = completions(progress)
      assert.strictEqual(done.length, 1, "exactly one part completes the chord")
      assert.deepStrictEqual(
        done[0],
        ids.map((_, i) => i)
      )
    })
  )

  it.effect("chord: a re-delivered part neither counts twice nor fires the body twice", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const groupId = id("redelivered")
      const [t0, t1] = ["t0", "t1"].map(id) as [string, string]
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, 2)
      const first = yield* report(t0, 0, "SUCCESS", "a")
      const again = yield* report(t0, 0, "SUCCESS", "a")
      assert.deepStrictEqual(
        [first, again],
        [
          { _tag: "Pending", ready: 1 },
          { _tag: "Pending", ready: 1 }
        ]
      )
      // The last part delivered twice at the same time: the body fires once.
      const lastTwice = yield* Effect.all([report(t1, 1, "SUCCESS", "b"), report(t1, 1, "SUCCESS", "b")], {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(completions(lastTwice), [["a", "b"]])
      const late = yield* report(t1, 1, "SUCCESS", "b")
      assert.strictEqual(late._tag, "Pending", "a late re-delivery does not complete again")
    })
  )

  it.effect("chord: add_to_chord extends the total", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const groupId = id("extended")
      const [t0, t1, extra] = ["t0", "t1", "extra"].map(id) as [string, string, string]
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, 2)
      yield* backend.addToChord(groupId)
      assert.deepStrictEqual(yield* hooks.readRaw(hooks.keys.chordCounter(groupId)), Option.some("1"))
      yield* report(t1, 1, "SUCCESS", 1)
      const second = yield* report(t0, 0, "SUCCESS", 0)
      assert.deepStrictEqual(second, { _tag: "Pending", ready: 2 })
      // An added task has no group_index: it sorts last.
      const last = yield* report(extra, undefined, "SUCCESS", "x")
      assert.deepStrictEqual(last, { _tag: "Complete", results: [0, 1, "x"] })
    })
  )

  it.effect("chord: a failed part fails the chord with Celery's ChordError, stored on the body", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const groupId = id("failing")
      const [t0, t1, body] = ["t0", "t1", "body"].map(id) as [string, string, string]
      const report = part(backend, groupId, body)
      yield* backend.setChordSize(groupId, 2)
      yield* report(t1, 1, "FAILURE", exc("MyError", ["x", 1], "tasks"))
      const error = yield* Effect.flip(report(t0, 0, "SUCCESS", 0))
      const message = `Dependency ${t1} raised MyError('x', 1)`
      assert.strictEqual(error._tag, "ChordError")
      if (error._tag === "ChordError") {
        assert.strictEqual(error.message, message)
        assert.strictEqual(error.groupId, groupId)
      }
      const failed = yield* h.within(Effect.flip(backend.waitFor(body)), "the chord body")
      assert.strictEqual(failed._tag, "TaskFailedError")
      if (failed._tag === "TaskFailedError") {
        assert.strictEqual(failed.state, "FAILURE")
        assert.deepStrictEqual(failed.exception, exc("ChordError", [message], "celery.exceptions"))
      }
      // Celery cleans the chord keys only on success: they are left to expire.
      assert.deepStrictEqual(yield* hooks.readRaw(hooks.keys.chordSize(groupId)), Option.some("2"))
      // So a re-delivered completing part must not fail (and store on the body) a second time.
      assert.deepStrictEqual(yield* report(t0, 0, "SUCCESS", 0), { _tag: "Pending", ready: 2 })
    })
  )

  it.effect("chord: a REVOKED part fails the chord; a RETRY part is returned as an exception value", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const retried = id("retried")
      const groupId = id("retry")
      const [t0, t1] = ["t0", "t1"].map(id) as [string, string]
      yield* backend.setChordSize(groupId, 2)
      yield* part(backend, groupId)(t0, 0, "RETRY", exc("Retry", ["again"], "celery.exceptions"))
      const done = yield* part(backend, groupId)(t1, 1, "SUCCESS", "ok")
      assert.deepStrictEqual(done, { _tag: "Complete", results: [exc("Retry", ["again"], "celery.exceptions"), "ok"] })
      if (done._tag === "Complete") assert.instanceOf(done.results[0], RemoteException)

      const revokedGroup = id("revoked")
      yield* backend.setChordSize(revokedGroup, 1)
      const error = yield* Effect.flip(
        part(backend, revokedGroup)(retried, 0, "REVOKED", exc("TaskRevokedError", ["revoked"], "celery.exceptions"))
      )
      assert.strictEqual(error._tag, "ChordError")
      assert.strictEqual(error.message, `Dependency ${retried} raised TaskRevokedError('revoked')`)
    })
  )

  it.effect("chord: without a size (.s) parts stay pending", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const groupId = id("unsized")
      const report = part(backend, groupId)
      const progress = yield* Effect.forEach([0, 1, 2], (i) => report(id(`t${i}`), i, "SUCCESS", i))
      assert.deepStrictEqual(
        progress.map((p) => p._tag),
        ["Pending", "Pending", "Pending"]
      )
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Task and group ids
// ---------------------------------------------------------------------------------------------

const EMPTY_TASK_ID = "task_id must not be empty. Got  instead."
const EMPTY_GROUP_ID = "group_id must not be empty. Got  instead."

const idTests = (it: It, h: Helpers): void => {
  it.scoped(
    "an empty task or group id fails every operation with InvalidIdError (Celery's message), nothing touched",
    () =>
      Effect.gen(function* () {
        const { backend, consumer, hooks } = yield* services
        const valid = id("valid")
        const expectInvalid = <A, E>(what: string, self: Effect.Effect<A, E>, message = EMPTY_TASK_ID) =>
          Effect.map(h.within(Effect.flip(self), what), (error) => {
            assert.strictEqual((error as { _tag?: unknown })._tag, "InvalidIdError", what)
            assert.strictEqual((error as { message?: unknown }).message, message, what)
          })
        const failure = exc("ValueError", ["x"], "builtins")
        yield* expectInvalid("store", backend.store("", "SUCCESS", 1))
        yield* expectInvalid("markAsStarted", backend.markAsStarted(""))
        yield* expectInvalid("markAsDone", backend.markAsDone("", 1))
        yield* expectInvalid("markAsFailure", backend.markAsFailure("", failure))
        yield* expectInvalid("markAsRetry", backend.markAsRetry("", failure))
        yield* expectInvalid("markAsRevoked", backend.markAsRevoked(""))
        yield* expectInvalid("get", backend.get(""))
        yield* expectInvalid("getMany", Stream.runCollect(backend.getMany([valid, ""], { timeout: "1 second" })))
        yield* expectInvalid("getAll", backend.getAll([valid, ""], { timeout: "1 second" }))
        // No timeout: it must fail at once rather than wait.
        yield* expectInvalid("waitFor", backend.waitFor(""))
        yield* expectInvalid("watch", Stream.runCollect(consumer.watch([valid, ""])))
        yield* expectInvalid("forget", backend.forget(""))
        yield* expectInvalid("exists", backend.exists(""))
        yield* expectInvalid("saveGroup", backend.saveGroup("", [valid]), EMPTY_GROUP_ID)
        yield* expectInvalid("restoreGroup", backend.restoreGroup(""), EMPTY_GROUP_ID)
        yield* expectInvalid("deleteGroup", backend.deleteGroup(""), EMPTY_GROUP_ID)
        yield* expectInvalid("setChordSize", backend.setChordSize("", 1), EMPTY_GROUP_ID)
        yield* expectInvalid("addToChord", backend.addToChord(""), EMPTY_GROUP_ID)
        const groupId = id("chord")
        yield* expectInvalid(
          "onChordPartReturn (group)",
          backend.onChordPartReturn({ groupId: "", taskId: valid }, "SUCCESS", 1),
          EMPTY_GROUP_ID
        )
        yield* expectInvalid(
          "onChordPartReturn (task)",
          backend.onChordPartReturn({ groupId, taskId: "" }, "SUCCESS", 1)
        )
        yield* expectInvalid(
          "onChordPartReturn (body)",
          backend.onChordPartReturn({ groupId, taskId: valid, bodyTaskId: "" }, "SUCCESS", 1)
        )
        // Nothing reached the store: not the bare prefix keys, not the valid id of a refused batch.
        assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.task(""))))
        assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.group(""))))
        assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.chordJoin(groupId))))
        assert.isFalse(yield* backend.exists(valid))
        yield* h.noSubscriptions([valid, ""])
      })
  )

  it.scoped("any other id is used as given: spaces, unicode, colons, glob characters, a long id", () =>
    Effect.gen(function* () {
      const { backend, consumer, hooks } = yield* services
      const u = randomUUID()
      const ids = [` ${u} `, `caf\u00e9 \u{1F600} ${u}`, `a:b:${u}`, `*?[x]-${u}`, `${u}-${"x".repeat(2000)}`, `0`].map(
        (taskId) => (taskId === "0" ? `0${u}` : taskId)
      )
      for (const [i, taskId] of ids.entries()) {
        assert.isFalse(yield* backend.exists(taskId))
        yield* backend.markAsDone(taskId, i)
        assert.isTrue(Option.isSome(yield* hooks.readRaw(hooks.keys.task(taskId))), "the key is the id as given")
        const meta = yield* backend.get(taskId)
        assert.strictEqual(meta.taskId, taskId)
        assert.strictEqual(meta.result, i)
        assert.isTrue(yield* backend.exists(taskId))
      }
      const all = yield* h.within(backend.getAll(ids), "getAll")
      assert.deepStrictEqual(
        all.map((e) => metaOf(e).result),
        ids.map((_, i) => i)
      )
      // A glob id is a channel name, not a pattern: a watch of it sees only its own results.
      const glob = `*-${u}`
      const other = `x-${u}`
      const events = yield* h.tap(consumer.watch([glob]))
      yield* h.listening(glob)
      yield* backend.markAsDone(other, "other")
      yield* backend.markAsDone(glob, "glob")
      const seen = metaOf(yield* events.next("the glob id's result"))
      assert.strictEqual(seen.taskId, glob)
      assert.strictEqual(seen.result, "glob")
      yield* events.done
      assert.strictEqual((yield* h.within(backend.waitFor(glob), "waitFor")).result, "glob")
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Option variants
// ---------------------------------------------------------------------------------------------

const expiryTests = (it: It, h: Helpers): void => {
  it.effect("results expire after result_expires", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId] = ["t", "g"].map(id) as [string, string]
      yield* backend.markAsDone(taskId, 1)
      yield* backend.saveGroup(groupId, [taskId])
      const ttl = Option.getOrThrow(yield* hooks.ttl(hooks.keys.task(taskId)))
      assert.isAbove(ttl, 0)
      assert.isAtMost(ttl, 2)
      yield* hooks.elapse(Duration.millis(900))
      assert.isTrue(Option.isSome(yield* hooks.readRaw(hooks.keys.task(taskId))), "still there before the TTL")
      assert.isTrue(yield* backend.exists(taskId))
      yield* hooks.elapse(Duration.millis(1600))
      yield* h.eventually(Effect.map(hooks.readRaw(hooks.keys.task(taskId)), Option.isNone), "the result to expire")
      assert.strictEqual((yield* backend.get(taskId)).status, "PENDING")
      assert.isFalse(yield* backend.exists(taskId), "an expired result does not exist")
      assert.isTrue(Option.isNone(yield* backend.restoreGroup(groupId)), "the group expired too")
    })
  )
}

const noExpiryTests = (it: It, chords: boolean): void => {
  it.effect("expires: null stores without a TTL", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId] = ["t", "g"].map(id) as [string, string]
      yield* backend.markAsDone(taskId, 1)
      yield* backend.saveGroup(groupId, [taskId])
      if (chords) {
        yield* backend.setChordSize(groupId, 2)
        yield* part(backend, groupId)(taskId, 0, "SUCCESS", 1)
      }
      assert.isTrue(Option.isSome(yield* hooks.readRaw(hooks.keys.task(taskId))))
      const chordKeys = chords ? [hooks.keys.chordSize(groupId), hooks.keys.chordJoin(groupId)] : []
      for (const key of [hooks.keys.task(taskId), hooks.keys.group(groupId), ...chordKeys]) {
        assert.isTrue(Option.isNone(yield* hooks.ttl(key)), `${key} has no TTL`)
      }
    })
  )

  it.effect("a value over maxValueSize fails with BackendStoreError and writes nothing", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId] = ["t", "g"].map(id) as [string, string]
      yield* backend.markAsStarted(taskId, { pid: 1, hostname: "h" })
      const before = yield* hooks.readRaw(hooks.keys.task(taskId))
      const error = yield* Effect.flip(backend.markAsDone(taskId, "x".repeat(2000)))
      assert.strictEqual(error._tag, "BackendStoreError")
      if (error._tag === "BackendStoreError") {
        assert.strictEqual(error.message, "value too large for Redis backend")
        assert.strictEqual(error.state, "SUCCESS")
        assert.strictEqual(error.taskId, taskId)
      }
      assert.deepStrictEqual(yield* hooks.readRaw(hooks.keys.task(taskId)), before, "nothing was written")
      assert.strictEqual((yield* backend.get(taskId)).status, "STARTED")
      const groupError = yield* Effect.flip(
        backend.saveGroup(
          groupId,
          Array.from({ length: 40 }, (_, i) => id(`m${i}`))
        )
      )
      assert.strictEqual(groupError._tag, "BackendStoreError")
      assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.group(groupId))))
      yield* backend.markAsDone(taskId, "small")
      assert.strictEqual((yield* backend.get(taskId)).result, "small")
    })
  )
}

const extendedTests = (it: It): void => {
  it.effect("result_extended writes name, args, kwargs, worker, retries, queue", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [taskId, groupId, bare] = ["t", "g", "bare"].map(id) as [string, string, string]
      yield* backend.markAsDone(taskId, 3, {
        request: {
          group: groupId,
          task: "tasks.add",
          args: [1, 2],
          kwargs: { z: 1 },
          hostname: "w1@host",
          retries: 0,
          routingKey: "celery"
        }
      })
      const meta = yield* backend.get(taskId)
      assert.deepStrictEqual(meta.extended, {
        name: "tasks.add",
        args: [1, 2],
        kwargs: { z: 1 },
        worker: "w1@host",
        retries: 0,
        queue: "celery"
      })
      assert.strictEqual(
        withoutDate(Option.getOrThrow(yield* hooks.readRaw(hooks.keys.task(taskId)))),
        `{"status": "SUCCESS", "result": 3, "traceback": null, "children": [], "date_done": "<date>", ` +
          `"group_id": "${groupId}", "name": "tasks.add", "args": [1, 2], "kwargs": {"z": 1}, "worker": "w1@host", ` +
          `"retries": 0, "queue": "celery", "task_id": "${taskId}"}`
      )
      yield* backend.markAsDone(bare, 4)
      assert.isUndefined((yield* backend.get(bare)).extended, "no request, no extended fields")
    })
  )
}

const unorderedChordTests = (it: It): void => {
  it.effect("chord (unordered): results in completion order; a duplicate counts twice, as Celery", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const groupId = id("unordered")
      const [t0, t1, t2] = ["t0", "t1", "t2"].map(id) as [string, string, string]
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, 3)
      yield* report(t2, 2, "SUCCESS", "r2")
      yield* report(t0, 0, "SUCCESS", "r0")
      const last = yield* report(t1, 1, "SUCCESS", "r1")
      assert.deepStrictEqual(last, { _tag: "Complete", results: ["r2", "r0", "r1"] })
      assert.isTrue(Option.isNone(yield* hooks.readRaw(hooks.keys.chordJoin(groupId))))

      const dup = id("duplicate")
      yield* backend.setChordSize(dup, 2)
      const first = yield* part(backend, dup)(t0, 0, "SUCCESS", "a")
      const again = yield* part(backend, dup)(t0, 0, "SUCCESS", "a")
      assert.deepStrictEqual(first, { _tag: "Pending", ready: 1 })
      assert.deepStrictEqual(again, { _tag: "Complete", results: ["a", "a"] })
    })
  )

  it.effect("chord (unordered): add_to_chord extends the total", () =>
    Effect.gen(function* () {
      const { backend } = yield* services
      const groupId = id("unordered-extra")
      const report = part(backend, groupId)
      yield* backend.setChordSize(groupId, 1)
      yield* backend.addToChord(groupId)
      const first = yield* report(id("t0"), 0, "SUCCESS", 0)
      assert.deepStrictEqual(first, { _tag: "Pending", ready: 1 })
      const last = yield* report(id("extra"), undefined, "SUCCESS", 1)
      assert.deepStrictEqual(last, { _tag: "Complete", results: [0, 1] })
    })
  )
}

const prefixTests = (it: It, h: Helpers, p: string, chords: boolean): void => {
  it.scoped("global_keyprefix prefixes task, group and chord keys and the channels", () =>
    Effect.gen(function* () {
      const { backend, consumer, hooks } = yield* services
      const [taskId, groupId, watched] = ["t", "g", "w"].map(id) as [string, string, string]
      assert.strictEqual(hooks.keys.task(taskId), `${p}celery-task-meta-${taskId}`)
      const waiting = yield* Effect.fork(backend.waitFor(taskId))
      yield* h.listening(taskId)
      yield* backend.markAsDone(taskId, "prefixed")
      assert.strictEqual((yield* h.within(Fiber.join(waiting), "waitFor")).result, "prefixed")
      assert.isTrue(Option.isSome(yield* hooks.readRaw(`${p}celery-task-meta-${taskId}`)))
      assert.isTrue(Option.isNone(yield* hooks.readRaw(`celery-task-meta-${taskId}`)), "nothing unprefixed")
      assert.isTrue(yield* backend.exists(taskId))
      const unprefixed = id("unprefixed")
      yield* hooks.writeRaw(`celery-task-meta-${unprefixed}`, "{}")
      assert.isFalse(yield* backend.exists(unprefixed), "exists looks under the prefix only")

      yield* backend.markAsStarted(watched, { pid: 1, hostname: "h" })
      const events = yield* h.tap(consumer.watch([watched]))
      assert.strictEqual(statusOf(yield* events.next("STARTED")), "STARTED")
      yield* backend.markAsDone(watched, 1)
      assert.strictEqual(statusOf(yield* events.next("SUCCESS")), "SUCCESS")
      yield* events.done

      yield* backend.saveGroup(groupId, [taskId])
      assert.isTrue(Option.isSome(yield* hooks.readRaw(`${p}celery-taskset-meta-${groupId}`)))
      if (!chords) return
      yield* backend.setChordSize(groupId, 2)
      yield* backend.addToChord(groupId)
      assert.deepStrictEqual(yield* hooks.readRaw(`${p}celery-taskset-meta-${groupId}.s`), Option.some("2"))
      assert.deepStrictEqual(yield* hooks.readRaw(`${p}celery-taskset-meta-${groupId}.t`), Option.some("1"))
      assert.isTrue(Option.isNone(yield* hooks.readRaw(`celery-taskset-meta-${groupId}.s`)))
    })
  )
}

/** A backend that refuses chords: every chord operation fails, as `rejected` expects, and writes nothing. */
const chordsRejectedTests = (it: It, rejected: (error: unknown) => boolean): void => {
  it.effect("chords are rejected with the backend's typed error, and nothing is written", () =>
    Effect.gen(function* () {
      const { backend, hooks } = yield* services
      const [groupId, taskId] = ["chord", "part"].map(id) as [string, string]
      const failures = [
        yield* Effect.flip(backend.setChordSize(groupId, 2)),
        yield* Effect.flip(backend.addToChord(groupId)),
        yield* Effect.flip(part(backend, groupId)(taskId, 0, "SUCCESS", 1))
      ]
      for (const error of failures) assert.isTrue(rejected(error), `not the rejection: ${String(error)}`)
      for (const key of [
        hooks.keys.chordSize(groupId),
        hooks.keys.chordCounter(groupId),
        hooks.keys.chordJoin(groupId)
      ]) {
        assert.isTrue(Option.isNone(yield* hooks.readRaw(key)), `${key} was written`)
      }
    })
  )
}
