/**
 * The Redis result backend on the wire: exact bytes stored and published, the atomic SUCCESS guard
 * under races, chord members as Celery writes them, exactly-once chord completion, MGET coalescing.
 * Every check reads the server through an independent raw node-redis connection.
 */
import { assert, layer } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { Clock, Context, Deferred, Effect, Either, Fiber, Layer, Option, Queue, Stream } from "effect"
import { createClient } from "redis"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import {
  BackendStoreError,
  ChordError,
  RemoteException,
  TaskFailedError,
  TimeoutError
} from "@effect-celery/core/Errors"
import * as Meta from "@effect-celery/core/Meta"
import type { ChordProgress } from "@effect-celery/core/ResultBackend"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { ResultConsumer } from "@effect-celery/core/ResultConsumer"
import { RedisClient } from "@effect-celery/redis"
import * as RedisResultBackend from "@effect-celery/redis/RedisResultBackend"
import * as RedisResultConsumer from "@effect-celery/redis/RedisResultConsumer"
import { PYTHON } from "../../../test-support/Celery.js"
import { redisServer } from "../../../test-support/RedisServer.js"
import { failure } from "./Expect.js"

type Raw = ReturnType<typeof createClient>

/** The test server, and a raw connection to it that does not go through the code under test. */
class Env extends Context.Tag("RedisResultBackend.test/Env")<Env, { readonly port: number; readonly raw: Raw }>() {}

const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient({ socket: { host: "127.0.0.1", port } })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.disconnect().catch(() => undefined))
  )

const EnvLive = Layer.scoped(
  Env,
  Effect.gen(function* () {
    const server = yield* redisServer()
    const raw = yield* rawClient(server.port)
    return { port: server.port, raw }
  })
)

const ClientLive = Layer.unwrapEffect(Effect.map(Env, ({ port }) => RedisClient.layer({ host: "127.0.0.1", port })))

const TestEnv = Layer.provideMerge(Layer.provideMerge(RedisResultConsumer.layer(), ClientLive), EnvLive)

/** A backend with these options over the shared server. */
const backend = (options: BackendOptions = {}) => RedisResultBackend.make(options)

let counter = 0
const uid = (label: string) => `${label}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/**
 * A raw subscriber on `channels`, subscribed when this returns. `drain` returns every message
 * published before it was called (in server order): it publishes a marker on a channel of its
 * own and collects until the marker comes back.
 */
const subscriber = (channels: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { port, raw } = yield* Env
    const sub = yield* rawClient(port)
    const queue = yield* Queue.unbounded<readonly [string, string]>()
    const marker = uid("barrier")
    yield* promise(() =>
      sub.subscribe([...channels, marker], (message, channel) => void Queue.unsafeOffer(queue, [channel, message]))
    )
    const drain = Effect.gen(function* () {
      yield* promise(() => raw.publish(marker, "."))
      const out: Array<readonly [string, string]> = []
      for (;;) {
        const item = yield* Queue.take(queue)
        if (item[0] === marker) return out
        out.push(item)
      }
    })
    return { drain }
  })

/**
 * MONITOR on the server over a plain socket (node-redis v4 has no MONITOR); `drain` returns the
 * command lines logged before it was called.
 */
const monitor = Effect.gen(function* () {
  const { port, raw } = yield* Env
  const queue = yield* Queue.unbounded<string>()
  const socket = yield* Effect.acquireRelease(
    Effect.async<Net.Socket>((resume) => {
      const sock = Net.connect(port, "127.0.0.1")
      let buffer = ""
      sock.setEncoding("utf8")
      sock.on("error", () => {})
      sock.on("data", (chunk: string) => {
        buffer += chunk
        const lines = buffer.split("\r\n")
        buffer = lines.pop() ?? ""
        for (const line of lines) {
          if (line === "+OK") resume(Effect.succeed(sock))
          else Queue.unsafeOffer(queue, line)
        }
      })
      sock.write("MONITOR\r\n")
    }),
    (sock) => Effect.sync(() => sock.destroy())
  )
  void socket
  const drain = Effect.gen(function* () {
    const marker = uid("monitor-marker")
    yield* promise(() => raw.get(marker))
    const out: Array<string> = []
    for (;;) {
      const line = yield* Queue.take(queue)
      if (line.includes(marker)) return out
      out.push(line)
    }
  })
  return { drain }
})

/**
 * Real Celery 5.2.6 (system Python) on the same server: its own chord member encoding and its own
 * `RedisBackend.on_chord_part_return` (which publishes the body to the Redis broker on completion).
 */
const CELERY_CHORD = `
import json, sys
from celery import Celery, signature
from celery.app.task import Context
spec = json.loads(sys.argv[1])
app = Celery("interop", broker=spec["url"], backend=spec["url"])
b = app.backend
def value(r):
    return ValueError(*r["args"]) if isinstance(r, dict) and r.get("__exc__") else r
out = {"members": [b.encode([1, t, s, b.encode_result(value(r), s)]) for t, s, r in spec.get("members", [])]}
for p in spec.get("parts", []):
    body = signature("tasks.body", app=app).set(task_id=p["body"])
    request = Context(id=p["tid"], group=p["gid"], group_index=p["index"], chord=dict(body))
    b.on_chord_part_return(request, p["state"], value(p["result"]))
if "exists" in spec:
    out["exists"] = b.client.exists(*spec["exists"])
if spec.get("pop"):
    raw = b.client.lpop("celery")
    out["message"] = None if raw is None else json.loads(raw)
print(json.dumps(out))
`

interface CeleryOut {
  readonly members: Array<string>
  readonly exists?: number
  readonly message?: { readonly headers: { readonly id: string }; readonly body: string } | null
}

const celery = (spec: Record<string, unknown>) =>
  Effect.async<CeleryOut>((resume) => {
    // The pyenv interpreter first on PATH must not leak its module paths into the system one.
    const env = { ...process.env }
    delete env.PYTHONPATH
    delete env.PYTHONHOME
    ChildProcess.execFile(PYTHON, ["-c", CELERY_CHORD, JSON.stringify(spec)], { env }, (error, stdout, stderr) => {
      if (error !== null) resume(Effect.dieMessage(`celery: ${stderr}`))
      else resume(Effect.succeed(JSON.parse(stdout) as CeleryOut))
    })
  })

/**
 * A clock stopped at `millis`, for exact `date_done` bytes. (The shared layer runs with live
 * services: a TestClock jump would also fire the client's watchdog timers, and would be shared by
 * every test of the file.)
 */
const stoppedAt = (millis: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => millis,
  unsafeCurrentTimeNanos: () => BigInt(millis) * 1_000_000n,
  currentTimeMillis: Effect.succeed(millis),
  currentTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
  sleep: (duration) => Effect.sleep(duration)
})

const t0 = Date.UTC(2026, 10, 22, 13, 50, 36, 972)

layer(TestEnv, { timeout: "60 seconds", excludeTestServices: true })("RedisResultBackend", (it) => {
  it.scoped("store writes Celery's exact bytes with SETEX and publishes the same bytes on the key", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const id = uid("bytes")
      const key = `celery-task-meta-${id}`
      const sub = yield* subscriber([key])
      yield* b
        .markAsDone(id, { charged: 42, currency: "EUR", ok: true, note: "café" }, { request: {} })
        .pipe(Effect.withClock(stoppedAt(t0)))
      const expected =
        `{"status": "SUCCESS", "result": {"charged": 42, "currency": "EUR", "ok": true, "note": "caf\\u00e9"}, ` +
        `"traceback": null, "children": [], "date_done": "2026-11-22T13:50:36.972000+00:00", "task_id": "${id}"}`
      assert.strictEqual(yield* promise(() => raw.get(key)), expected)
      assert.strictEqual(yield* promise(() => raw.ttl(key)), 86400)
      assert.deepStrictEqual(yield* sub.drain, [[key, expected]])
    })
  )

  it.scoped("naive dates (Celery ≤ 5.3), no request ⇒ children null, FAILURE with traceback", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend({ dateStyle: "naive" })
      const id = uid("naive")
      const exc = new RemoteException({
        excType: "PaymentError",
        excMessage: ["card declined", 42, "EUR"],
        excModule: "billing.tasks"
      })
      yield* b.markAsFailure(id, exc, { traceback: "Traceback ...\n" }).pipe(Effect.withClock(stoppedAt(t0)))
      assert.strictEqual(
        yield* promise(() => raw.get(`celery-task-meta-${id}`)),
        `{"status": "FAILURE", "result": {"exc_type": "PaymentError", "exc_message": ["card declined", 42, "EUR"], ` +
          `"exc_module": "billing.tasks"}, "traceback": "Traceback ...\\n", "children": null, ` +
          `"date_done": "2026-11-22T13:50:36.972000", "task_id": "${id}"}`
      )
    })
  )

  it.scoped("markAsStarted / markAsRevoked write Celery's payloads", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const started = uid("started")
      yield* b.markAsStarted(started, { pid: 8994, hostname: "w1@host" })
      assert.strictEqual(
        yield* promise(() => raw.get(`celery-task-meta-${started}`)),
        `{"status": "STARTED", "result": {"pid": 8994, "hostname": "w1@host"}, "traceback": null, "children": null, "date_done": null, "task_id": "${started}"}`
      )
      const revoked = uid("revoked")
      yield* b.markAsRevoked(revoked, "terminated")
      const meta = yield* b.get(revoked)
      assert.strictEqual(meta.status, "REVOKED")
      assert.deepStrictEqual(
        meta.result,
        new RemoteException({ excType: "TaskRevokedError", excMessage: ["terminated"], excModule: "celery.exceptions" })
      )
    })
  )

  it.effect("expires: null and sub-second TTLs store with SET (no TTL); a custom TTL is whole seconds", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const ids = [uid("ttl-null"), uid("ttl-half"), uid("ttl-90")]
      yield* Effect.scoped(Effect.flatMap(backend({ expires: null }), (b) => b.markAsDone(ids[0]!, 1)))
      yield* Effect.scoped(Effect.flatMap(backend({ expires: "500 millis" }), (b) => b.markAsDone(ids[1]!, 1)))
      yield* Effect.scoped(Effect.flatMap(backend({ expires: "90.7 seconds" }), (b) => b.markAsDone(ids[2]!, 1)))
      const ttls = yield* promise(() => Promise.all(ids.map((id) => raw.ttl(`celery-task-meta-${id}`))))
      assert.deepStrictEqual(ttls, [-1, -1, 90])
    })
  )

  it.scoped("a stored SUCCESS is never overwritten; other states are", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const id = uid("guard")
      const key = `celery-task-meta-${id}`
      const sub = yield* subscriber([key])
      // "SUCCESS" inside a result does not count: only the meta's status does.
      yield* b.store(id, "PROGRESS", { status: "SUCCESS", note: '{"status": "SUCCESS"' })
      yield* b.markAsDone(id, 1)
      const stored = yield* promise(() => raw.get(key))
      yield* b.markAsFailure(
        id,
        new RemoteException({ excType: "ValueError", excMessage: ["late"], excModule: "builtins" })
      )
      yield* b.store(id, "STARTED", null)
      assert.strictEqual(yield* promise(() => raw.get(key)), stored)
      const published = yield* sub.drain
      assert.deepStrictEqual(
        published.map(([, m]) => JSON.parse(m).status),
        ["PROGRESS", "SUCCESS"],
        "skipped writes publish nothing"
      )
      assert.strictEqual((yield* b.get(id)).status, "SUCCESS")
    })
  )

  it.scoped("the guard reads metas Python wrote: NaN results, other key orders, deep nesting", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const deep = "[".repeat(1500) + "]".repeat(1500) // beyond cjson's depth limit
      const cases: ReadonlyArray<readonly [string, string, boolean]> = [
        ["nan", `{"status": "SUCCESS", "result": NaN, "traceback": null}`, true],
        ["inf", `{"status": "SUCCESS", "result": [Infinity, -Infinity]}`, true],
        ["order", `{"result": 1, "status": "SUCCESS"}`, true],
        ["compact", `{"status":"SUCCESS","result":1}`, true],
        ["deep-first", `{"status": "SUCCESS", "result": ${deep}}`, true],
        ["escaped", `{"status": "\\u0053UCCESS", "result": 1}`, true],
        ["started", `{"status": "STARTED", "result": {"status": "SUCCESS"}}`, false],
        ["no-success-bytes", `{"status": "STARTED", "result": null}`, false],
        ["not-json", `SUCCESS`, false],
        ["array", `["SUCCESS"]`, false]
      ]
      for (const [label, value, kept] of cases) {
        const id = uid(`py-${label}`)
        const key = `celery-task-meta-${id}`
        yield* promise(() => raw.set(key, value))
        yield* b.store(id, "FAILURE", null)
        const after = yield* promise(() => raw.get(key))
        assert.strictEqual(after === value, kept, `${label}: ${kept ? "kept" : "overwritten"}`)
      }
    })
  )

  it.scoped("atomic guard under a race: once a SUCCESS is stored no concurrent writer replaces it", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const ids = Array.from({ length: 40 }, () => uid("race"))
      // One subscriber on every channel: after a SUCCESS was published nothing else may be.
      const sub = yield* subscriber(ids.map((id) => `celery-task-meta-${id}`))
      const exc = new RemoteException({
        excType: "WorkerLostError",
        excMessage: ["lost"],
        excModule: "billiard.exceptions"
      })
      const writes = ids.flatMap((id) => [
        ...Array.from({ length: 8 }, () => b.markAsFailure(id, exc)),
        b.markAsDone(id, "ok"),
        ...Array.from({ length: 8 }, () => b.store(id, "STARTED", null))
      ])
      // Shuffle so SUCCESS lands anywhere among the competing writes.
      const shuffled = writes
        .map((w) => [Math.random(), w] as const)
        .sort((x, y) => x[0] - y[0])
        .map(([, w]) => w)
      yield* Effect.all(shuffled, { concurrency: "unbounded", discard: true })
      const finals = yield* promise(() => raw.mGet(ids.map((id) => `celery-task-meta-${id}`)))
      for (const value of finals) assert.strictEqual(JSON.parse(value!).status, "SUCCESS")
      const published = new Map<string, Array<string>>()
      for (const [channel, message] of yield* sub.drain) {
        published.set(channel, [...(published.get(channel) ?? []), JSON.parse(message).status])
      }
      for (const id of ids) {
        const statuses = published.get(`celery-task-meta-${id}`) ?? []
        assert.strictEqual(statuses[statuses.length - 1], "SUCCESS")
        assert.strictEqual(statuses.filter((s) => s === "SUCCESS").length, 1)
      }
    })
  )

  it.scoped("a value over maxValueSize fails with BackendStoreError before any write", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend({ maxValueSize: 200 })
      const id = uid("big")
      const error = failure(yield* Effect.exit(b.markAsDone(id, "x".repeat(300))))
      assert.instanceOf(error, BackendStoreError)
      assert.strictEqual(error.message, "value too large for Redis backend")
      assert.strictEqual(error.state, "SUCCESS")
      assert.strictEqual(error.taskId, id)
      assert.isNull(yield* promise(() => raw.get(`celery-task-meta-${id}`)))
    })
  )

  it.scoped("after SCRIPT FLUSH the scripts are loaded again (NOSCRIPT handled)", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const id = uid("noscript")
      yield* b.store(id, "STARTED", null)
      yield* promise(() => raw.scriptFlush())
      yield* b.markAsDone(id, 7)
      assert.strictEqual((yield* b.get(id)).result, 7)
    })
  )

  it.scoped("get: missing ⇒ PENDING; global_keyprefix applies to keys", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend({ keys: { globalKeyprefix: "p:" } })
      const id = uid("prefix")
      assert.deepStrictEqual(yield* b.get(id), Meta.pending(id))
      yield* b.markAsDone(id, [1, 2])
      assert.isNotNull(yield* promise(() => raw.get(`p:celery-task-meta-${id}`)))
      assert.deepStrictEqual((yield* b.get(id)).result, [1, 2])
    })
  )

  it.scoped(
    "concurrent gets: a few MGETs on the wire, every caller gets its own value, a corrupt one fails alone",
    () =>
      Effect.gen(function* () {
        const { raw } = yield* Env
        const b = yield* backend()
        const ids = Array.from({ length: 300 }, (_, i) => uid(`cget-${i}`))
        // Every third id stays missing; a corrupt value fails only its own caller.
        yield* Effect.forEach(ids, (id, i) => (i % 3 === 0 ? Effect.void : b.markAsDone(id, i)), {
          concurrency: 50,
          discard: true
        })
        const corrupt = ids[1]!
        yield* promise(() => raw.set(`celery-task-meta-${corrupt}`, "{not json"))
        const mon = yield* monitor
        const results = yield* Effect.forEach(ids, (id) => Effect.either(b.get(id)), { concurrency: "unbounded" })
        results.forEach((result, i) => {
          if (ids[i] === corrupt) {
            assert.isTrue(Either.isLeft(result) && result.left._tag === "DecodeError" && result.left.id === corrupt)
          } else if (i % 3 === 0) {
            assert.deepStrictEqual(result, Either.right(Meta.pending(ids[i]!)))
          } else {
            assert.isTrue(Either.isRight(result) && result.right.taskId === ids[i] && result.right.result === i)
          }
        })
        // The gets of one tick share an MGET: every key asked exactly once, in a handful of commands.
        // The keys that read as missing are checked for a non-string in one script call too (its
        // TYPE calls show in MONITOR as the script's, "lua").
        const sent = (yield* mon.drain).filter((c) => c.includes("celery-task-meta-cget-") && !/\[\d+ lua\]/.test(c))
        const keysOf = (c: string) => [...c.matchAll(/"(celery-task-meta-cget-[^"]+)"/g)].map((m) => m[1]!)
        const reads = sent.filter((c) => /"MGET"|"GET"/i.test(c))
        assert.isBelow(reads.length, 10)
        assert.isTrue(reads.some((c) => /"MGET" "celery-task-meta-cget-/i.test(c)))
        assert.deepStrictEqual(reads.flatMap(keysOf).sort(), ids.map((id) => `celery-task-meta-${id}`).sort())
        const checks = sent.filter((c) => /"EVALSHA"/i.test(c))
        assert.isBelow(checks.length, 4)
        assert.deepStrictEqual(
          checks.flatMap(keysOf).sort(),
          ids
            .filter((_, i) => i % 3 === 0)
            .map((id) => `celery-task-meta-${id}`)
            .sort()
        )
      })
  )

  it.scoped(
    "concurrent stores: a few script calls, each result stored and published once, a key of the wrong type fails alone",
    () =>
      Effect.gen(function* () {
        const { raw } = yield* Env
        const b = yield* backend()
        const ids = Array.from({ length: 200 }, (_, i) => uid(`cstore-${i}`))
        const key = (id: string) => `celery-task-meta-${id}`
        const wrong = ids[7]!
        const done = ids[3]!
        yield* promise(() => raw.lPush(key(wrong), "x"))
        yield* b.markAsDone(done, "first")
        const sub = yield* subscriber(ids.map(key))
        const mon = yield* monitor
        const results = yield* Effect.forEach(ids, (id, i) => Effect.either(b.markAsDone(id, i)), {
          concurrency: "unbounded"
        })
        results.forEach((r, i) => {
          if (ids[i] !== wrong) return assert.isTrue(Either.isRight(r), ids[i])
          assert.isTrue(Either.isLeft(r) && r.left._tag === "CommandError" && r.left.message.includes("WRONGTYPE"))
        })
        // The SUCCESS guard held inside a batch: `done` keeps its first result and is not published again.
        const written = ids.filter((id) => id !== wrong)
        const stored = yield* promise(() => raw.mGet(written.map(key)))
        written.forEach((id, j) => {
          const meta = Either.getOrThrow(Meta.decodeTaskMeta(id, stored[j]!))
          assert.strictEqual(meta.result, id === done ? "first" : ids.indexOf(id))
        })
        const published = (yield* sub.drain).map(([channel]) => channel)
        assert.deepStrictEqual(
          published.sort(),
          written
            .filter((id) => id !== done)
            .map(key)
            .sort()
        )
        const calls = (yield* mon.drain).filter(
          (line) => /^\S+ \[\d+ [^\]]*\] "evalsha"/i.test(line) && line.includes("cstore-")
        )
        assert.isAtLeast(calls.length, 1)
        assert.isBelow(calls.length, 50)
      })
  )

  it.scoped("saveGroup / restoreGroup / deleteGroup: Celery's group meta bytes, SETEX + PUBLISH", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const gid = uid("group")
      const key = `celery-taskset-meta-${gid}`
      const sub = yield* subscriber([key])
      yield* b.saveGroup(gid, ["t1", { id: "t2", parent: null, children: null }])
      const expected = `{"result": [["${gid}", null], [[["t1", null], null], [["t2", null], null]]]}`
      assert.strictEqual(yield* promise(() => raw.get(key)), expected)
      assert.strictEqual(yield* promise(() => raw.ttl(key)), 86400)
      assert.deepStrictEqual(yield* sub.drain, [[key, expected]])
      const restored = yield* b.restoreGroup(gid)
      assert.deepStrictEqual(
        Option.map(restored, (g) => g.results.map((r) => r.id)),
        Option.some(["t1", "t2"])
      )
      yield* b.deleteGroup(gid)
      assert.isTrue(Option.isNone(yield* b.restoreGroup(gid)))
    })
  )

  it.scoped("setChordSize writes SETEX .s <n> and PUBLISH .s <n>; addToChord is INCRBY .t 1", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const gid = uid("size")
      const sub = yield* subscriber([`celery-taskset-meta-${gid}.s`])
      yield* b.setChordSize(gid, 3)
      yield* b.addToChord(gid)
      yield* b.addToChord(gid)
      assert.strictEqual(yield* promise(() => raw.get(`celery-taskset-meta-${gid}.s`)), "3")
      assert.strictEqual(yield* promise(() => raw.ttl(`celery-taskset-meta-${gid}.s`)), 86400)
      assert.strictEqual(yield* promise(() => raw.get(`celery-taskset-meta-${gid}.t`)), "2")
      assert.deepStrictEqual(yield* sub.drain, [[`celery-taskset-meta-${gid}.s`, "3"]])
    })
  )

  it.scoped("chord members are byte-identical to Celery's, scored by group_index (+inf when absent)", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const gid = uid("members")
      yield* b.onChordPartReturn({ groupId: gid, taskId: "c0", groupIndex: 0 }, "SUCCESS", 0)
      yield* b.onChordPartReturn({ groupId: gid, taskId: "c1" }, "SUCCESS", { a: [1.5, "é"] })
      const members = yield* promise(() =>
        raw.sendCommand<Array<string>>(["ZRANGE", `celery-taskset-meta-${gid}.j`, "0", "-1", "WITHSCORES"])
      )
      assert.deepStrictEqual(members, [
        `[1, "c0", "SUCCESS", 0]`,
        "0",
        `[1, "c1", "SUCCESS", {"a": [1.5, "\\u00e9"]}]`,
        "inf"
      ])
      assert.strictEqual(yield* promise(() => raw.ttl(`celery-taskset-meta-${gid}.j`)), 86400)
    })
  )

  it.scoped("chord members are the bytes Celery's own encoder writes", () =>
    Effect.gen(function* () {
      const { port, raw } = yield* Env
      const b = yield* backend()
      const gid = uid("celery-members")
      const cases: ReadonlyArray<readonly [string, string, unknown]> = [
        ["m0", "SUCCESS", 0],
        ["m1", "SUCCESS", { a: [1.5, 1e-7, "é", "\u{1F600}", null, true], big: 12345678901234 }],
        ["m2", "SUCCESS", 'quote " and \\ and /'],
        ["m3", "FAILURE", { __exc__: true, args: ["bad", 2] }]
      ]
      const bad = new RemoteException({ excType: "ValueError", excMessage: ["bad", 2], excModule: "builtins" })
      yield* Effect.forEach(cases, ([tid, state, result], i) =>
        b.onChordPartReturn({ groupId: gid, taskId: tid, groupIndex: i }, state, state === "FAILURE" ? bad : result)
      )
      const stored = yield* promise(() => raw.zRange(`celery-taskset-meta-${gid}.j`, 0, -1))
      const theirs = yield* celery({ url: `redis://127.0.0.1:${port}/0`, members: cases })
      assert.deepStrictEqual(stored, theirs.members)
    })
  )

  it.scoped("chords interoperate with Celery's on_chord_part_return on the same keys, in both directions", () =>
    Effect.gen(function* () {
      const { port } = yield* Env
      const url = `redis://127.0.0.1:${port}/0`
      const b = yield* backend()
      // Celery reports the first parts, we complete the chord with everyone's results in order.
      const g1 = uid("interop-ts-last")
      yield* b.setChordSize(g1, 3)
      yield* celery({
        url,
        parts: [0, 1].map((i) => ({
          tid: `${g1}-${i}`,
          gid: g1,
          index: i,
          state: "SUCCESS",
          result: { n: i },
          body: uid("body")
        }))
      })
      const done = yield* b.onChordPartReturn({ groupId: g1, taskId: `${g1}-2`, groupIndex: 2 }, "SUCCESS", { n: 2 })
      assert.deepStrictEqual(done, { _tag: "Complete", results: [{ n: 0 }, { n: 1 }, { n: 2 }] })
      // We report the first parts, Celery completes the chord: it decodes our members, sends the
      // body with the results in order and deletes the chord keys.
      const g2 = uid("interop-py-last")
      const body = uid("body")
      yield* b.setChordSize(g2, 3)
      assert.strictEqual(
        (yield* b.onChordPartReturn({ groupId: g2, taskId: `${g2}-1`, groupIndex: 1 }, "SUCCESS", "one"))._tag,
        "Pending"
      )
      assert.strictEqual(
        (yield* b.onChordPartReturn({ groupId: g2, taskId: `${g2}-0`, groupIndex: 0 }, "SUCCESS", "zero"))._tag,
        "Pending"
      )
      const py = yield* celery({
        url,
        parts: [{ tid: `${g2}-2`, gid: g2, index: 2, state: "SUCCESS", result: "two", body }],
        exists: ["j", "t", "s"].map((k) => `celery-taskset-meta-${g2}.${k}`),
        pop: true
      })
      assert.strictEqual(py.exists, 0, "Celery completed the chord and deleted its keys")
      assert.strictEqual(py.message?.headers.id, body)
      const [args] = JSON.parse(Buffer.from(py.message!.body, "base64").toString("utf8"))
      assert.deepStrictEqual(args, [["zero", "one", "two"]])
      assert.strictEqual((yield* b.get(body)).status, "PENDING", "no ChordError was stored on the body")
    })
  )

  const chordRun = (ordered: boolean) =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend({ chordOrdered: ordered })
      const gid = uid(ordered ? "chord-zset" : "chord-list")
      const n = 30
      yield* b.setChordSize(gid, n)
      const part = (i: number) =>
        b.onChordPartReturn({ groupId: gid, taskId: `${gid}-p${i}`, groupIndex: i }, "SUCCESS", i * 10)
      // Every part reported concurrently; in ZSET mode each one also re-delivered (identical member).
      const calls = Array.from({ length: n }, (_, i) => (ordered ? [part(i), part(i)] : [part(i)])).flat()
      const outcomes: Array<ChordProgress> = yield* Effect.all(calls, { concurrency: "unbounded" })
      const completes = outcomes.filter((o) => o._tag === "Complete")
      assert.lengthOf(completes, 1, "completed exactly once")
      const results = (completes[0] as Extract<ChordProgress, { _tag: "Complete" }>).results
      if (ordered)
        assert.deepStrictEqual(
          results,
          Array.from({ length: n }, (_, i) => i * 10)
        )
      else
        assert.sameMembers(
          [...results] as Array<number>,
          Array.from({ length: n }, (_, i) => i * 10)
        )
      const keys = ["j", "t", "s"].map((s) => `celery-taskset-meta-${gid}.${s}`)
      assert.strictEqual(yield* promise(() => raw.exists(keys)), 0, "keys deleted on success")
      // A late re-delivery after completion does not complete it again.
      assert.strictEqual((yield* part(3))._tag, "Pending")
    })

  it.scoped("exactly-once chord completion under concurrent parts and re-delivery (ZSET)", () => chordRun(true))
  it.scoped("exactly-once chord completion under concurrent parts (LIST, result_chord_ordered=False)", () =>
    chordRun(false)
  )

  it.scoped("add_to_chord raises the total: completion waits for .s + .t parts", () =>
    Effect.gen(function* () {
      const b = yield* backend()
      const gid = uid("extra")
      yield* b.setChordSize(gid, 1)
      yield* b.addToChord(gid)
      const first = yield* b.onChordPartReturn({ groupId: gid, taskId: "a", groupIndex: 0 }, "SUCCESS", "a")
      assert.deepStrictEqual(first, { _tag: "Pending", ready: 1 })
      const second = yield* b.onChordPartReturn({ groupId: gid, taskId: "b", groupIndex: 1 }, "SUCCESS", "b")
      assert.deepStrictEqual(second, { _tag: "Complete", results: ["a", "b"] })
    })
  )

  it.scoped("a failed part fails the chord with Celery's ChordError, stored on the body; keys are left", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const gid = uid("chordfail")
      const body = uid("body")
      yield* b.setChordSize(gid, 2)
      const exc = new RemoteException({ excType: "MyError", excMessage: ["x", 1], excModule: "tasks" })
      yield* b.onChordPartReturn({ groupId: gid, taskId: "ok", groupIndex: 0, bodyTaskId: body }, "SUCCESS", 1)
      const error = failure(
        yield* Effect.exit(
          b.onChordPartReturn({ groupId: gid, taskId: "bad", groupIndex: 1, bodyTaskId: body }, "FAILURE", exc)
        )
      )
      assert.instanceOf(error, ChordError)
      assert.strictEqual(error.message, "Dependency bad raised MyError('x', 1)")
      const stored = yield* b.get(body)
      assert.strictEqual(stored.status, "FAILURE")
      assert.deepStrictEqual(
        stored.result,
        new RemoteException({
          excType: "ChordError",
          excMessage: ["Dependency bad raised MyError('x', 1)"],
          excModule: "celery.exceptions"
        })
      )
      assert.strictEqual(yield* promise(() => raw.exists(`celery-taskset-meta-${gid}.j`)), 1)
      assert.strictEqual(yield* promise(() => raw.exists(`celery-taskset-meta-${gid}.s`)), 1)
    })
  )

  it.scoped("no expiry: chord keys get no EXPIRE", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend({ expires: null })
      const gid = uid("noexp")
      yield* b.setChordSize(gid, 2)
      yield* b.onChordPartReturn({ groupId: gid, taskId: "a", groupIndex: 0 }, "SUCCESS", 1)
      assert.strictEqual(yield* promise(() => raw.ttl(`celery-taskset-meta-${gid}.j`)), -1)
      assert.strictEqual(yield* promise(() => raw.ttl(`celery-taskset-meta-${gid}.s`)), -1)
    })
  )

  it.scoped("waitFor: subscribe → read → wait; SUCCESS returns, FAILURE fails with the remote exception", () =>
    Effect.gen(function* () {
      const b = yield* backend()
      const ok = uid("wait-ok")
      const fiber = yield* Effect.fork(b.waitFor(ok, { timeout: "10 seconds" }))
      yield* b.markAsDone(ok, "done")
      assert.strictEqual((yield* fiber.await.pipe(Effect.flatten)).result, "done")
      const bad = uid("wait-bad")
      const exc = new RemoteException({ excType: "ValueError", excMessage: ["bad"], excModule: "builtins" })
      yield* b.markAsFailure(bad, exc)
      const error = failure(yield* Effect.exit(b.waitFor(bad)))
      assert.instanceOf(error, TaskFailedError)
      assert.deepStrictEqual(error.exception, exc)
    })
  )

  it.scoped("waitFor times out with Celery's message", () =>
    Effect.gen(function* () {
      const b = yield* backend()
      const error = failure(yield* Effect.exit(b.waitFor(uid("wait-never"), { timeout: "200 millis" })))
      assert.instanceOf(error, TimeoutError)
      assert.strictEqual(error.celeryMessage, "The operation timed out.")
    })
  )

  it.scoped("getMany: ready ones first in asked order, the rest as they come, corrupt ones as Left", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const [a, c, d, later] = [uid("gm-a"), uid("gm-c"), uid("gm-d"), uid("gm-later")]
      yield* b.markAsDone(c, "c")
      yield* b.markAsDone(a, "a")
      yield* promise(() => raw.set(`celery-task-meta-${d}`, "garbage"))
      const started = yield* Deferred.make<void>()
      const fiber = yield* b.getMany([a, later, c, d]).pipe(
        Stream.tap((item) =>
          Either.isRight(item) && item.right.taskId === c ? Deferred.succeed(started, undefined) : Effect.void
        ),
        Stream.runCollect,
        Effect.fork
      )
      yield* Deferred.await(started)
      yield* b.markAsDone(later, "later")
      const items = Array.from(yield* fiber.await.pipe(Effect.flatten))
      assert.deepStrictEqual(
        items.map((e) => (Either.isRight(e) ? e.right.taskId : `left:${e.left.id}`)),
        [a, c, `left:${d}`, later]
      )
    })
  )

  it.scoped(
    "getMany of 1,200 ids: chunked MGET, ready ones first in asked order, each of the rest once as it finishes",
    () =>
      Effect.gen(function* () {
        const b = yield* backend()
        const ids = Array.from({ length: 1200 }, (_, i) => uid(`gm-many-${i}`))
        const late = new Set(ids.filter((_, i) => i % 12 === 5))
        yield* Effect.forEach(ids, (id, i) => (late.has(id) ? b.store(id, "STARTED", null) : b.markAsDone(id, i)), {
          concurrency: 100,
          discard: true
        })
        const firstLate = yield* Deferred.make<void>()
        const fiber = yield* b.getMany([...ids, ids[0]!], { timeout: "20 seconds" }).pipe(
          Stream.tap(() => Deferred.succeed(firstLate, undefined)),
          Stream.runCollect,
          Effect.fork
        )
        yield* Deferred.await(firstLate)
        yield* Effect.forEach(late, (id) => b.markAsDone(id, "late"), { concurrency: 50, discard: true })
        const items = Array.from(yield* fiber.await.pipe(Effect.flatten)).map((e) =>
          Either.isRight(e) ? e.right : assert.fail(e.left.message)
        )
        assert.lengthOf(items, 1200, "each id once, duplicates asked once")
        const early = ids.filter((id) => !late.has(id))
        assert.deepStrictEqual(
          items.slice(0, early.length).map((m) => m.taskId),
          early
        )
        assert.sameMembers(
          items.slice(early.length).map((m) => m.taskId),
          [...late]
        )
        assert.isTrue(items.slice(early.length).every((m) => m.status === "SUCCESS" && m.result === "late"))
      })
  )

  it.scoped("getAll of 1,200 ids: chunked MGET, one entry per id given in asked order, the late ones waited for", () =>
    Effect.gen(function* () {
      const { raw } = yield* Env
      const b = yield* backend()
      const ids = Array.from({ length: 1200 }, (_, i) => uid(`ga-many-${i}`))
      const late = ids.filter((_, i) => i % 12 === 5)
      const isLate = new Set(late)
      yield* Effect.forEach(ids, (id, i) => (isLate.has(id) ? b.store(id, "STARTED", null) : b.markAsDone(id, i)), {
        concurrency: 100,
        discard: true
      })
      const asked = [...ids, ids[0]!]
      const fiber = yield* Effect.fork(b.getAll(asked, { timeout: "20 seconds" }))
      // The late ones are written once getAll is waiting on them (after its read).
      const channel = `celery-task-meta-${late[late.length - 1]!}`
      while (((yield* promise(() => raw.pubSubNumSub(channel)))[channel] ?? 0) === 0) yield* Effect.sleep("5 millis")
      yield* Effect.forEach(late, (id) => b.markAsDone(id, "late"), { concurrency: 50, discard: true })
      const metas = (yield* Fiber.join(fiber)).map((e) => (Either.isRight(e) ? e.right : assert.fail(e.left.message)))
      assert.deepStrictEqual(
        metas.map((m) => m.taskId),
        asked
      )
      assert.deepStrictEqual(
        metas.map((m) => m.result),
        asked.map((id) => (isLate.has(id) ? "late" : ids.indexOf(id)))
      )
    })
  )

  it.scoped("getMany times out with 'Operation timed out (<timeout>)'", () =>
    Effect.gen(function* () {
      const b = yield* backend()
      const error = failure(
        yield* Effect.exit(Stream.runDrain(b.getMany([uid("gm-never")], { timeout: "300 millis" })))
      )
      assert.instanceOf(error, TimeoutError)
      assert.strictEqual(error.celeryMessage, "Operation timed out (0.3)")
    })
  )

  it.effect("layer provides the ResultBackend tag", () =>
    Effect.gen(function* () {
      const b = yield* ResultBackend
      const id = uid("layer")
      yield* b.markAsDone(id, true)
      assert.strictEqual((yield* b.get(id)).result, true)
    }).pipe(Effect.provide(RedisResultBackend.layer()))
  )

  it.effect("the ResultConsumer in context is the one waitFor uses", () =>
    Effect.map(ResultConsumer, (consumer) => assert.isFunction(consumer.watch))
  )
})
