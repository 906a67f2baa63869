import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Context,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberId,
  Layer,
  Redacted,
  Scheduler,
  Scope,
  TestClock,
  TestContext
} from "effect"
import { createClient } from "redis"
import { ConnectionError } from "@effect-celery/core/Errors"
import { RedisClient } from "@effect-celery/redis"
import { driverOf } from "../src/internal/driver.js"
import { freePort, redisServer } from "../../../test-support/RedisServer.js"
import { build, failure, failureOf } from "./Expect.js"

/** An independent admin connection to a test server (not through the code under test). */
const admin = (options: { readonly port?: number; readonly path?: string; readonly password?: string }) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient({
        socket: options.path !== undefined ? { path: options.path } : { host: "127.0.0.1", port: options.port! },
        ...(options.password !== undefined ? { password: options.password } : {})
      })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.disconnect().catch(() => undefined))
  )

/** A private server, a client of it under test and a plain node-redis client beside it. */
const serverWithClient = Effect.gen(function* () {
  const server = yield* redisServer()
  const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port }))
  const direct = yield* admin({ port: server.port })
  return { server, client, direct } as const
})

/**
 * A client logged in as an ACL user allowed `ok:*` keys only, on a private server holding `ok:1`,
 * `ok:2` and `secret:1`.
 */
const limitedUserClient = Effect.gen(function* () {
  const server = yield* redisServer({ args: ["--requirepass", "adminpw"] })
  const direct = yield* admin({ port: server.port, password: "adminpw" })
  yield* Effect.promise(() => direct.sendCommand(["ACL", "SETUSER", "limited", "on", ">pw", "~ok:*", "&*", "+@all"]))
  yield* Effect.promise(() => direct.mSet(["ok:1", "one", "ok:2", "two", "secret:1", "hidden"]))
  return yield* build(
    RedisClient.layer({ host: "127.0.0.1", port: server.port, username: "limited", password: Redacted.make("pw") })
  )
})

/** Client names listed by CLIENT LIST with the given name. */
const clientsNamed = (c: ReturnType<typeof createClient>, name: string) =>
  Effect.promise(() => c.sendCommand<string>(["CLIENT", "LIST"])).pipe(
    Effect.map((list) => list.split("\n").filter((line) => line.includes(` name=${name} `)))
  )

const idsNamed = (c: ReturnType<typeof createClient>, name: string) =>
  Effect.map(clientsNamed(c, name), (lines) => lines.map((l) => /(?:^| )id=(\d+)/.exec(l)?.[1] ?? ""))

/**
 * Block the client's shared connection on BLPOP (test only), wait until the server lists it as
 * blocked, kill it from `direct`, and return the error the in-flight command failed with.
 */
const killInFlight = (client: RedisClient.RedisClient, direct: ReturnType<typeof createClient>, name: string) =>
  Effect.gen(function* () {
    const blocked = yield* Effect.fork(Effect.exit(client.command(["BLPOP", `${name}-list`, "0"])))
    yield* clientsNamed(direct, name).pipe(
      Effect.repeat({ until: (lines) => lines.some((l) => l.includes("cmd=blpop")) })
    )
    const ids = yield* idsNamed(direct, name)
    assert.lengthOf(ids, 1)
    yield* Effect.promise(() => direct.sendCommand(["CLIENT", "KILL", "ID", ids[0]!]))
    return failure(yield* blocked.await.pipe(Effect.flatten))
  })

describe("RedisClient", () => {
  it.scopedLive("connects over TCP and runs commands", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port }))
      const pong = yield* client.command(["PING"])
      assert.strictEqual(pong, "PONG")
      assert.strictEqual(client.db, 0)
      assert.strictEqual(client.uri, `redis://127.0.0.1:${server.port}/0`)
      yield* client.command(["SET", "rc-tcp-k", "v"])
      assert.strictEqual(yield* client.command(["GET", "rc-tcp-k"]), "v")
    })
  )

  it.scopedLive("connects over a unix socket", () =>
    Effect.gen(function* () {
      const server = yield* redisServer({ unixSocket: true })
      const client = yield* build(RedisClient.layer({ path: server.socketPath!, db: 2 }))
      yield* client.command(["SET", "rc-unix-k", "u"])
      const direct = yield* admin({ path: server.socketPath! })
      yield* Effect.promise(() => direct.select(2))
      assert.strictEqual(yield* Effect.promise(() => direct.get("rc-unix-k")), "u")
      assert.strictEqual(client.uri, `socket://${server.socketPath!}`)
    })
  )

  it.scopedLive("a closed port fails the layer quickly with ConnectionError Connect", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const started = Date.now()
      const error = yield* failureOf(build(RedisClient.layer({ host: "127.0.0.1", port })))
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Connect")
      assert.isBelow(Date.now() - started, 2000)
    })
  )

  it.scopedLive("db selection isolates data", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const one = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, db: 1 }))
      const three = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, db: 3 }))
      yield* one.command(["SET", "rc-db-k", "one"])
      assert.isNull(yield* three.command(["GET", "rc-db-k"]))
      yield* three.command(["SET", "rc-db-k", "three"])
      assert.strictEqual(yield* one.command(["GET", "rc-db-k"]), "one")
      assert.strictEqual(yield* three.command(["GET", "rc-db-k"]), "three")
      assert.strictEqual(three.db, 3)
    })
  )

  it.scopedLive("ACL user and password authenticate; a wrong password fails the layer with Auth", () =>
    Effect.gen(function* () {
      const server = yield* redisServer({ args: ["--requirepass", "adminpw"] })
      const direct = yield* admin({ port: server.port, password: "adminpw" })
      yield* Effect.promise(() =>
        direct.sendCommand(["ACL", "SETUSER", "celery", "on", ">s3cret", "~*", "&*", "+@all"])
      )
      const client = yield* build(
        RedisClient.layer({
          host: "127.0.0.1",
          port: server.port,
          username: "celery",
          password: Redacted.make("s3cret")
        })
      )
      assert.strictEqual(yield* client.command(["ACL", "WHOAMI"]), "celery")
      assert.strictEqual(client.uri, `redis://celery:**@127.0.0.1:${server.port}/0`)

      const wrong = yield* failureOf(
        build(
          RedisClient.layer({
            host: "127.0.0.1",
            port: server.port,
            username: "celery",
            password: Redacted.make("nope")
          })
        )
      )
      assert.instanceOf(wrong, ConnectionError)
      assert.strictEqual(wrong.reason, "Auth")

      const missing = yield* failureOf(build(RedisClient.layer({ host: "127.0.0.1", port: server.port })))
      assert.instanceOf(missing, ConnectionError)
      assert.strictEqual(missing.reason, "Auth")
    })
  )

  it.scopedLive("error replies are CommandErrors and keep the connection", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-cmd" }))
      yield* client.command(["SET", "rc-cmd-str", "x"])
      const error = yield* failureOf(client.command(["LPUSH", "rc-cmd-str", "y"]))
      assert.strictEqual(error._tag, "CommandError")
      assert.include(error.message, "WRONGTYPE")
      // A function that throws synchronously is a CommandError too, never a defect.
      const thrown = yield* failureOf(
        driverOf(client).execute("BAD", () => {
          throw new TypeError("bad args")
        })
      )
      assert.strictEqual(thrown._tag, "CommandError")
      const direct = yield* admin({ port: server.port })
      assert.lengthOf(yield* clientsNamed(direct, "rc-cmd"), 1)
      assert.strictEqual(yield* client.command(["PING"]), "PONG")
      assert.lengthOf(yield* clientsNamed(direct, "rc-cmd"), 1)
    })
  )

  it.scopedLive("after CLIENT KILL the in-flight command fails with ConnectionError, the next call reconnects", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-kill" }))
      const direct = yield* admin({ port: server.port })
      const error = yield* killInFlight(client, direct, "rc-kill")
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(yield* client.command(["PING"]), "PONG")
      assert.lengthOf(yield* clientsNamed(direct, "rc-kill"), 1)
    })
  )

  // What closing the connections to an old master after a Sentinel failover does to a command in
  // flight on one: node-redis fails it with its DisconnectsClientError, whose `name` is "Error".
  it.scopedLive(
    "a command in flight when its connection is disconnected fails with ConnectionError Closed, the next call reconnects",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-disc" }))
        const direct = yield* admin({ port: server.port })
        const blocked = yield* Effect.fork(Effect.exit(client.command(["BLPOP", "rc-disc-list", "0"])))
        yield* clientsNamed(direct, "rc-disc").pipe(
          Effect.repeat({ until: (lines) => lines.some((l) => l.includes("cmd=blpop")) })
        )
        yield* driverOf(client).execute("DISCONNECT", (c) => c.disconnect())
        const error = failure(yield* blocked.await.pipe(Effect.flatten))
        assert.instanceOf(error, ConnectionError)
        assert.strictEqual(error.reason, "Closed")
        assert.strictEqual(yield* client.command(["PING"]), "PONG")
      })
  )

  it.scopedLive("an idle connection killed by the server is replaced without crashing", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-idle" }))
      const direct = yield* admin({ port: server.port })
      const ids = yield* idsNamed(direct, "rc-idle")
      assert.lengthOf(ids, 1)
      yield* Effect.promise(() => direct.sendCommand(["CLIENT", "KILL", "ID", ids[0]!]))
      // The next call either saw the socket close already (and reconnected first) or fails once.
      const first = yield* Effect.exit(client.command(["PING"]))
      if (Exit.isFailure(first)) assert.instanceOf(failure(first), ConnectionError)
      assert.strictEqual(yield* client.command(["PING"]), "PONG")
      const after = yield* clientsNamed(direct, "rc-idle")
      assert.lengthOf(after, 1)
      assert.notInclude(after[0]!, `id=${ids[0]!} `)
    })
  )

  it.scopedLive("concurrent callers share one reconnect", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-many" }))
      const direct = yield* admin({ port: server.port })
      // After this the client holds no connection, so all 50 callers go through the reconnect.
      yield* killInFlight(client, direct, "rc-many")
      const results = yield* Effect.all(
        Array.from({ length: 50 }, () => client.command(["PING"])),
        {
          concurrency: "unbounded"
        }
      )
      assert.deepStrictEqual(new Set(results), new Set(["PONG"]))
      assert.lengthOf(yield* clientsNamed(direct, "rc-many"), 1)
    })
  )

  it.scopedLive("closing the scope closes every connection", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const direct = yield* admin({ port: server.port })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* build(
            RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-close" })
          )
          yield* client.command(["PING"])
          const sub = yield* driverOf(client).connect
          yield* Effect.promise(() => sub.subscribe("rc-close-chan", () => {}))
          assert.lengthOf(yield* clientsNamed(direct, "rc-close"), 2)
        })
      )
      assert.lengthOf(yield* clientsNamed(direct, "rc-close"), 0)
    })
  )

  it.scopedLive("execute after the scope closed fails with ConnectionError Shutdown", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const client = yield* Effect.scoped(build(RedisClient.layer({ host: "127.0.0.1", port: server.port })))
      const error = yield* failureOf(client.command(["PING"]))
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Shutdown")
    })
  )

  it.scopedLive(
    "socket timeout: a command with no reply fails with ConnectionError Timeout, then the client reconnects",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const client = yield* build(
          RedisClient.layer({
            host: "127.0.0.1",
            port: server.port,
            // 1 s, not less: the fresh connection after the freeze must not time out too on a
            // loaded machine (a 300 ms one did once at load 15).
            socketTimeout: "1 second",
            clientName: "rc-timeout"
          })
        )
        const pid = server.process.pid()!
        const resume = Effect.sync(() => process.kill(pid, "SIGCONT"))
        yield* Effect.addFinalizer(() => resume)
        // The server stops answering: a frozen process, as a hung host would be.
        process.kill(pid, "SIGSTOP")
        const started = Date.now()
        const error = yield* failureOf(client.command(["GET", "rc-timeout-k"]))
        const elapsed = Date.now() - started
        yield* resume
        assert.instanceOf(error, ConnectionError)
        assert.strictEqual(error.reason, "Timeout")
        assert.isAtLeast(elapsed, 950)
        assert.isBelow(elapsed, 6000)
        const direct = yield* admin({ port: server.port })
        assert.strictEqual(yield* client.command(["PING"]), "PONG")
        assert.lengthOf(yield* clientsNamed(direct, "rc-timeout"), 1)
      })
  )

  it.scopedLive("the socket-timeout watchdog reads the Clock: a TestClock drives it, real time does not", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const direct = yield* admin({ port: server.port })
      yield* Effect.gen(function* () {
        // Built without `build`'s PING: the BLPOP below opens the connection, so the watchdog
        // sees no reply from the start (a PING reply would restart its count at its first tick).
        const client = yield* Effect.map(
          Layer.build(
            RedisClient.layer({
              host: "127.0.0.1",
              port: server.port,
              socketTimeout: "60 seconds",
              clientName: "rc-testclock"
            })
          ),
          (ctx) => Context.get(ctx, RedisClient.RedisClient)
        )
        // A command that gets no reply until the connection goes: BLPOP on an empty list.
        const blocked = yield* Effect.fork(Effect.exit(client.command(["BLPOP", "rc-testclock-list", "0"])))
        yield* clientsNamed(direct, "rc-testclock").pipe(
          Effect.repeat({ until: (lines) => lines.some((l) => l.includes("cmd=blpop")) })
        )
        yield* TestClock.adjust("59 seconds")
        assert.isNull(blocked.unsafePoll())
        yield* TestClock.adjust("2 seconds")
        const error = failure(yield* Fiber.join(blocked))
        assert.instanceOf(error, ConnectionError)
        assert.strictEqual(error.reason, "Timeout")
      }).pipe(Effect.provide(TestContext.TestContext))
    })
  )

  it.scopedLive(
    "layerUrl reads Celery URLs (unix socket, ACL, db) and layerConfig reads them from the environment",
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer({ unixSocket: true })
        const direct = yield* admin({ port: server.port })
        yield* Effect.promise(() =>
          direct.sendCommand(["ACL", "SETUSER", "celery-url", "on", ">p@ss:w", "~*", "&*", "+@all"])
        )

        const socket = yield* build(RedisClient.layerUrl(`redis+socket://${server.socketPath!}?virtual_host=5`))
        assert.strictEqual(socket.db, 5)
        assert.strictEqual(socket.uri, `socket://${server.socketPath!}`)
        yield* socket.command(["SET", "rc-url-k", "socket"])

        const tcp = yield* build(
          RedisClient.layerUrl(Redacted.make(`redis://celery-url:p%40ss%3Aw@127.0.0.1:${server.port}/5`))
        )
        assert.strictEqual(tcp.uri, `redis://celery-url:**@127.0.0.1:${server.port}/5`)
        assert.strictEqual(yield* tcp.command(["GET", "rc-url-k"]), "socket")
        assert.strictEqual(yield* tcp.command(["ACL", "WHOAMI"]), "celery-url")

        const env = ConfigProvider.fromMap(
          new Map([
            ["CELERY_RESULT_BACKEND", `redis://127.0.0.1:${server.port}/5`],
            ["CELERY_REDIS_USERNAME", "celery-url"],
            ["CELERY_REDIS_PASSWORD", "p@ss:w"],
            ["CELERY_REDIS_SOCKET_TIMEOUT", "30"],
            ["CELERY_REDIS_CLIENT_NAME", "rc-from-env"]
          ])
        )
        const fromEnv = yield* build(RedisClient.layerConfig()).pipe(Effect.withConfigProvider(env))
        assert.strictEqual(yield* fromEnv.command(["GET", "rc-url-k"]), "socket")
        assert.lengthOf(yield* clientsNamed(direct, "rc-from-env"), 1)

        const missing = yield* failureOf(
          build(RedisClient.layerConfig()).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
        )
        assert.strictEqual(missing._tag, "ConfigError")
        const badSsl = yield* failureOf(
          build(RedisClient.layerConfig()).pipe(
            Effect.withConfigProvider(
              ConfigProvider.fromMap(
                new Map([
                  ["CELERY_RESULT_BACKEND", "redis://h/0"],
                  ["CELERY_REDIS_BACKEND_USE_SSL", "[1]"]
                ])
              )
            )
          )
        )
        assert.strictEqual(badSsl._tag, "ConfigError")
        const bad = yield* failureOf(build(RedisClient.layerUrl("redis://127.0.0.1/abc")))
        assert.strictEqual(bad._tag, "ImproperlyConfigured")
      })
  )

  it.scopedLive("a READONLY reply (a demoted master) is a ConnectionError that replaces the connection", () =>
    Effect.gen(function* () {
      const [master, replica] = yield* Effect.all([redisServer(), redisServer()], { concurrency: 2 })
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: replica.port, clientName: "rc-ro" }))
      const direct = yield* admin({ port: replica.port })
      const before = yield* idsNamed(direct, "rc-ro")
      yield* Effect.promise(() => direct.sendCommand(["REPLICAOF", "127.0.0.1", String(master.port)]))
      const error = yield* failureOf(client.command(["SET", "rc-ro-k", "v"]))
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "ReadOnly")
      // Reads still work, on a new connection (the old one was dropped).
      assert.isNull(yield* client.command(["GET", "rc-ro-k"]))
      const after = yield* idsNamed(direct, "rc-ro")
      assert.lengthOf(after, 1)
      assert.notDeepEqual(after, before)
    })
  )

  it.scopedLive("a BUSY reply is a ConnectionError Busy that keeps the connection", () =>
    Effect.gen(function* () {
      const server = yield* redisServer({ args: ["--busy-reply-threshold", "50"] })
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-busy" }))
      const direct = yield* admin({ port: server.port })
      const before = yield* idsNamed(direct, "rc-busy")
      const looper = yield* admin({ port: server.port })
      const script = Effect.promise(() =>
        looper.sendCommand(["EVAL", "while true do end", "0"]).catch((e: unknown) => e)
      )
      yield* Effect.forkScoped(script)
      // Readiness: the server answers BUSY once the script has run past the threshold.
      const result = yield* client.command(["GET", "rc-busy-k"]).pipe(
        Effect.either,
        Effect.repeat({
          until: (r) => Either.isLeft(r) && r.left._tag === "ConnectionError" && r.left.reason === "Busy"
        })
      )
      assert.isTrue(Either.isLeft(result) && result.left instanceof ConnectionError)
      const killer = yield* admin({ port: server.port })
      yield* Effect.promise(() => killer.sendCommand(["SCRIPT", "KILL"]))
      // The script stops at its next interrupt check; until then the server may still say BUSY.
      const value = yield* client
        .command(["GET", "rc-busy-k"])
        .pipe(Effect.retry({ while: (e) => e._tag === "ConnectionError" && e.reason === "Busy" }))
      assert.isNull(value)
      assert.deepStrictEqual(yield* idsNamed(direct, "rc-busy"), before)
    })
  )

  it.scopedLive("a server that accepts but never answers: connect fails with Timeout, and closing is bounded", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const pid = server.process.pid()!
      const resume = Effect.sync(() => process.kill(pid, "SIGCONT"))
      yield* Effect.addFinalizer(() => resume)
      // Open a client first, so there is something to close while the server is frozen.
      const scope = yield* Scope.make()
      const client = yield* build(RedisClient.layer({ host: "127.0.0.1", port: server.port })).pipe(Scope.extend(scope))
      assert.strictEqual(yield* client.command(["PING"]), "PONG")
      // Frozen: the kernel still completes TCP handshakes, nothing answers.
      process.kill(pid, "SIGSTOP")
      let started = Date.now()
      const error = yield* failureOf(
        build(RedisClient.layer({ host: "127.0.0.1", port: server.port, connectTimeout: "300 millis" }))
      )
      assert.instanceOf(error, ConnectionError)
      assert.strictEqual(error.reason, "Timeout")
      assert.isBelow(Date.now() - started, 3000)
      started = Date.now()
      yield* Scope.close(scope, Exit.void)
      assert.isBelow(Date.now() - started, 3000)
      yield* resume
    })
  )

  describe("get: the GETs of a tick coalesced into MGETs", () => {
    /** Calls per command since the last CONFIG RESETSTAT, from INFO commandstats. */
    const commandCalls = (c: ReturnType<typeof createClient>) =>
      Effect.promise(() => c.info("commandstats")).pipe(
        Effect.map((info) => {
          const calls: Record<string, number> = {}
          for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) calls[m[1]!] = Number(m[2])
          return calls
        })
      )

    /** Wait until the server holds unread commands of the (blocked) client `name`. */
    const queuedBehindBlock = (c: ReturnType<typeof createClient>, name: string) =>
      clientsNamed(c, name).pipe(
        Effect.repeat({ until: (lines) => lines.some((l) => /cmd=blpop/.test(l) && !/ qbuf=0 /.test(l)) })
      )

    it.scopedLive("thousands of concurrent gets: each caller its own value, a few MGETs in all", () =>
      Effect.gen(function* () {
        const { client, direct } = yield* serverWithClient
        const n = 2500
        // Every third key is missing; the same keys are asked twice.
        yield* Effect.promise(() =>
          direct.mSet(
            Array.from({ length: n }, (_, i) => i)
              .filter((i) => i % 3 !== 0)
              .flatMap((i) => [`rc-get-${i}`, `v${i}`])
          )
        )
        yield* Effect.promise(() => direct.configResetStat())
        const keys = [
          ...Array.from({ length: n }, (_, i) => `rc-get-${i}`),
          ...Array.from({ length: n }, (_, i) => `rc-get-${i}`)
        ]
        const values = yield* Effect.forEach(keys, (k) => client.get(k), { concurrency: "unbounded" })
        values.forEach((v, j) => {
          const i = j % n
          assert.strictEqual(v, i % 3 === 0 ? null : `v${i}`, keys[j])
        })
        const calls = yield* commandCalls(direct)
        assert.isAtLeast(calls["mget"] ?? 0, 1)
        assert.isBelow((calls["mget"] ?? 0) + (calls["get"] ?? 0), 50)
      })
    )

    it.scopedLive(
      "two batches in flight: a burst goes as two halves, and 100 callers in a loop keep to two MGETs a round",
      () =>
        Effect.gen(function* () {
          const { client, direct } = yield* serverWithClient
          yield* Effect.promise(() =>
            direct.mSet(Array.from({ length: 100 }, (_, i) => [`rc-half-${i}`, `v${i}`]).flat())
          )
          yield* Effect.promise(() => direct.configResetStat())
          const burst = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => client.get(`rc-half-${i}`),
            {
              concurrency: "unbounded"
            }
          )
          assert.deepStrictEqual(
            burst,
            Array.from({ length: 100 }, (_, i) => `v${i}`)
          )
          assert.deepStrictEqual(yield* commandCalls(direct), { mget: 2 })
          // 100 callers, 10 gets each: the half handed out first sends its next MGET while the other
          // is still out, so neither splits again (more halves would cost a command each).
          yield* Effect.promise(() => direct.configResetStat())
          let next = 0
          const wrong: Array<string> = []
          const caller: Effect.Effect<void, unknown> = Effect.suspend(() => {
            if (next >= 1000) return Effect.void
            const i = next++ % 100
            return client.get(`rc-half-${i}`).pipe(
              Effect.tap((v) => (v === `v${i}` ? Effect.void : Effect.sync(() => wrong.push(`${i}: ${v}`)))),
              Effect.zipRight(caller)
            )
          })
          yield* Effect.all(
            Array.from({ length: 100 }, () => caller),
            { concurrency: "unbounded", discard: true }
          )
          assert.deepStrictEqual(wrong, [])
          assert.deepStrictEqual(yield* commandCalls(direct), { mget: 20 })
        })
    )

    it.scopedLive(
      "batched: each caller resumes with its own outcome; an outcome that throws is that caller's defect alone",
      () =>
        Effect.gen(function* () {
          const { client, direct } = yield* serverWithClient
          yield* Effect.promise(() =>
            direct.mSet(["rc-out-1", "1", "rc-out-2", "two", "rc-out-3", "boom", "rc-out-4", "4"])
          )
          const number = client.batched<string, string | null, number, string>({
            command: "GET",
            maxBatch: 10,
            one: (c, key) => c.get(key),
            many: (c, keys) => c.mget(keys),
            outcome: (raw, key) => {
              if (raw === "boom") throw new Error(`cannot read ${key}`)
              return Number.isNaN(Number(raw)) ? Either.left(`${key} holds ${raw}`) : Either.right(Number(raw))
            }
          })
          const keys = ["rc-out-1", "rc-out-2", "rc-out-3", "rc-out-4"]
          for (const together of [true, false]) {
            // Together: one MGET; one at a time: each a lone GET.
            const exits = yield* Effect.forEach(keys, (k) => Effect.exit(number(k)), {
              concurrency: together ? "unbounded" : 1
            })
            assert.deepStrictEqual(exits[0], Exit.succeed(1))
            assert.deepStrictEqual(exits[1], Exit.fail("rc-out-2 holds two"))
            assert.isTrue(Exit.isFailure(exits[2]!) && Cause.isDie(exits[2].cause), String(exits[2]))
            assert.deepStrictEqual(exits[3], Exit.succeed(4))
          }
        })
    )

    it.scopedLive(
      "batched: a caller interrupted before its batch is sent is withdrawn; its item never reaches the server",
      () =>
        Effect.gen(function* () {
          const { client, direct } = yield* serverWithClient
          const sent: Array<string> = []
          const set = client.batched<string, string | null>({
            command: "SET",
            maxBatch: 10,
            one: (c, key) => {
              sent.push(key)
              return c.command(["SET", key, "1"]) as Promise<string | null>
            },
            many: (c, keys) => {
              sent.push(...keys)
              return c.command(["MSET", ...keys.flatMap((k) => [k, "1"])]).then(() => keys.map(() => "OK"))
            },
            outcome: Either.right
          })
          // The callers run on a scheduler drained by hand, so that they all park and some are
          // interrupted in one synchronous stretch: before the batch's flush (a microtask) can run.
          const parkThenInterrupt = (keys: ReadonlyArray<string>, interrupted: ReadonlyArray<number>) =>
            Effect.gen(function* () {
              const tasks: Array<() => void> = []
              let manual = true
              const scheduler: Scheduler.Scheduler = {
                shouldYield: () => false,
                scheduleTask: (task, priority) =>
                  manual ? tasks.push(task) : Scheduler.defaultScheduler.scheduleTask(task, priority)
              }
              const drain = () => {
                while (tasks.length > 0) tasks.shift()!()
              }
              const fibers = yield* Effect.forEach(keys, (k) => Effect.fork(set(k))).pipe(
                Effect.withScheduler(scheduler)
              )
              yield* Effect.sync(() => {
                drain()
                for (const i of interrupted) fibers[i]!.unsafeInterruptAsFork(FiberId.none)
                drain()
                manual = false
              })
              return yield* Effect.forEach(fibers, Fiber.await)
            })
          const keys = ["rc-cancel-1", "rc-cancel-2", "rc-cancel-3"]
          const exits = yield* parkThenInterrupt(keys, [1])
          assert.deepStrictEqual(exits[0], Exit.succeed("OK"))
          assert.isTrue(Exit.isInterrupted(exits[1]!))
          assert.deepStrictEqual(exits[2], Exit.succeed("OK"))
          assert.deepStrictEqual(sent, ["rc-cancel-1", "rc-cancel-3"])
          assert.deepStrictEqual(yield* Effect.promise(() => direct.mGet(keys)), ["1", null, "1"])
          // Every caller of a tick interrupted: the flush finds nothing to send, and the client still works.
          const [lone] = yield* parkThenInterrupt(["rc-cancel-4"], [0])
          assert.isTrue(Exit.isInterrupted(lone!))
          assert.strictEqual(yield* set("rc-cancel-5"), "OK")
          assert.deepStrictEqual(sent, ["rc-cancel-1", "rc-cancel-3", "rc-cancel-5"])
        })
    )

    it.scopedLive(
      "a lone get is a GET (WRONGTYPE fails it); inside a batch a non-string key reads as missing, as getMany",
      () =>
        Effect.gen(function* () {
          const { client, direct } = yield* serverWithClient
          yield* Effect.promise(() => direct.lPush("rc-get-list", "x"))
          yield* Effect.promise(() => direct.set("rc-get-str", "s"))
          const error = yield* failureOf(client.get("rc-get-list"))
          assert.strictEqual(error._tag, "CommandError")
          assert.include(error.message, "WRONGTYPE")
          const both = yield* Effect.all([client.get("rc-get-list"), client.get("rc-get-str")], {
            concurrency: "unbounded"
          })
          assert.deepStrictEqual(both, [null, "s"])
        })
    )

    it.scopedLive("an error reply to a batch (an ACL denial) fails only the caller whose key it concerns", () =>
      Effect.gen(function* () {
        const client = yield* limitedUserClient
        const results = yield* Effect.all(
          ["ok:1", "secret:1", "ok:2", "ok:3"].map((k) => Effect.either(client.get(k))),
          {
            concurrency: "unbounded"
          }
        )
        assert.deepStrictEqual(
          results.filter(Either.isRight).map((r) => r.right),
          ["one", "two", null]
        )
        const denied = results[1]!
        assert.isTrue(Either.isLeft(denied))
        if (Either.isLeft(denied)) {
          assert.strictEqual(denied.left._tag, "CommandError")
          assert.include(denied.left.message, "NOPERM")
        }
      })
    )

    it.scopedLive(
      "batched: recover is made only for callers whose item got no reply of its own; what it sends again is not recovered twice",
      () =>
        Effect.gen(function* () {
          const client = yield* limitedUserClient
          const recovered: Array<string> = []
          const get = client.batched<string, string | null>({
            command: "GET",
            maxBatch: 10,
            one: (c, key) => c.get(key),
            many: (c, keys) => c.mget(keys),
            outcome: Either.right,
            recover: (attempt, key, again) =>
              Effect.suspend(() => {
                recovered.push(key)
                return Effect.catchAll(attempt, () =>
                  Effect.catchAll(again(key), (e) => Effect.succeed(`gave up: ${e._tag}`))
                )
              })
          })
          // Replies for all: nothing recovered.
          const plain = yield* Effect.all([get("ok:1"), get("ok:2")], { concurrency: "unbounded" })
          assert.deepStrictEqual(plain, ["one", "two"])
          assert.deepStrictEqual(recovered, [])
          // The MGET is denied: each key goes alone and every caller gets recover; the denied one's
          // second attempt (through `again`) fails to it unrecovered.
          const mixed = yield* Effect.all([get("ok:1"), get("secret:1"), get("ok:2")], { concurrency: "unbounded" })
          assert.deepStrictEqual(mixed, ["one", "gave up: CommandError", "two"])
          assert.deepStrictEqual([...recovered].sort(), ["ok:1", "ok:2", "secret:1"])
        })
    )

    it.scopedLive(
      "a connection lost under a batch fails each of its callers with ConnectionError; the next get reconnects",
      () =>
        Effect.gen(function* () {
          const server = yield* redisServer()
          const client = yield* build(
            RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-get-kill" })
          )
          const direct = yield* admin({ port: server.port })
          yield* Effect.promise(() => direct.mSet(["rc-get-a", "a", "rc-get-b", "b"]))
          const blocked = yield* Effect.fork(Effect.exit(client.command(["BLPOP", "rc-get-kill-list", "0"])))
          yield* clientsNamed(direct, "rc-get-kill").pipe(
            Effect.repeat({ until: (lines) => lines.some((l) => l.includes("cmd=blpop")) })
          )
          const gets = yield* Effect.fork(
            Effect.all([client.get("rc-get-a"), client.get("rc-get-b")].map(Effect.exit), { concurrency: "unbounded" })
          )
          yield* queuedBehindBlock(direct, "rc-get-kill")
          const ids = yield* idsNamed(direct, "rc-get-kill")
          yield* Effect.promise(() => direct.sendCommand(["CLIENT", "KILL", "ID", ids[0]!]))
          const exits = yield* gets.await.pipe(Effect.flatten)
          for (const exit of exits) assert.instanceOf(failure(exit), ConnectionError)
          assert.instanceOf(failure(yield* blocked.await.pipe(Effect.flatten)), ConnectionError)
          assert.strictEqual(yield* client.get("rc-get-a"), "a")
          assert.lengthOf(yield* clientsNamed(direct, "rc-get-kill"), 1)
        })
    )

    it.scopedLive("an interrupted caller leaves the rest of its batch their values", () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const client = yield* build(
          RedisClient.layer({ host: "127.0.0.1", port: server.port, clientName: "rc-get-int" })
        )
        const direct = yield* admin({ port: server.port })
        yield* Effect.promise(() => direct.mSet(["rc-get-1", "1", "rc-get-2", "2", "rc-get-3", "3"]))
        const blocked = yield* Effect.fork(client.command(["BLPOP", "rc-get-int-list", "0"]))
        yield* clientsNamed(direct, "rc-get-int").pipe(
          Effect.repeat({ until: (lines) => lines.some((l) => l.includes("cmd=blpop")) })
        )
        const fibers = yield* Effect.forEach(["rc-get-1", "rc-get-2", "rc-get-3"], (k) => Effect.fork(client.get(k)))
        yield* queuedBehindBlock(direct, "rc-get-int")
        const interrupted = yield* Fiber.interrupt(fibers[1]!)
        assert.isTrue(Exit.isInterrupted(interrupted))
        yield* Effect.promise(() => direct.lPush("rc-get-int-list", "go"))
        assert.deepStrictEqual(yield* Fiber.join(blocked), ["rc-get-int-list", "go"])
        assert.strictEqual(yield* Fiber.join(fibers[0]!), "1")
        assert.strictEqual(yield* Fiber.join(fibers[2]!), "3")
      })
    )

    it.scopedLive("get after the scope closed fails with ConnectionError Shutdown", () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const client = yield* Effect.scoped(build(RedisClient.layer({ host: "127.0.0.1", port: server.port })))
        const error = yield* failureOf(client.get("k"))
        assert.instanceOf(error, ConnectionError)
        assert.strictEqual(error.reason, "Shutdown")
      })
    )
  })

  describe("typed operations", () => {
    const commandCalls = (c: ReturnType<typeof createClient>) =>
      Effect.promise(() => c.info("commandstats")).pipe(
        Effect.map((info) => {
          const calls: Record<string, number> = {}
          for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) calls[m[1]!] = Number(m[2])
          return calls
        })
      )

    it.scopedLive("mget, del, incrBy, publish and commands answer as the commands they name", () =>
      Effect.gen(function* () {
        const { client, direct } = yield* serverWithClient
        yield* Effect.promise(() => direct.mSet(["rc-op-1", "one", "rc-op-3", "three"]))
        yield* Effect.promise(() => direct.lPush("rc-op-list", "x"))
        // A missing key and a key holding a list both read as null, as MGET reads them.
        assert.deepStrictEqual(yield* client.mget(["rc-op-1", "rc-op-2", "rc-op-3", "rc-op-list"]), [
          "one",
          null,
          "three",
          null
        ])
        assert.deepStrictEqual(yield* client.mget([]), [])
        assert.strictEqual(yield* client.del([]), 0)
        assert.strictEqual(yield* client.incrBy("rc-op-n", 5), 5)
        assert.strictEqual(yield* client.incrBy("rc-op-n", -2), 3)
        assert.strictEqual(yield* client.publish("rc-op-chan", "hello"), 0)
        assert.strictEqual(yield* client.del(["rc-op-1", "rc-op-2", "rc-op-n"]), 2)
        assert.deepStrictEqual(
          yield* client.commands([["MULTI"], ["SET", "rc-op-m", "v"], ["GET", "rc-op-m"], ["EXEC"]]),
          ["OK", "QUEUED", "QUEUED", ["OK", "v"]]
        )
        assert.deepStrictEqual(yield* client.commands([]), [])
        const error = yield* failureOf(
          client.commands([
            ["GET", "rc-op-m"],
            ["LPUSH", "rc-op-m", "y"]
          ])
        )
        assert.strictEqual(error._tag, "CommandError")
        assert.include(error.message, "WRONGTYPE")
      })
    )

    it.scopedLive("mget of a long list: in order, as two MGETs sent together", () =>
      Effect.gen(function* () {
        const { client, direct } = yield* serverWithClient
        const n = 1500
        yield* Effect.promise(() =>
          direct.mSet(
            Array.from({ length: n }, (_, i) => i)
              .filter((i) => i % 2 === 0)
              .flatMap((i) => [`rc-long-${i}`, `v${i}`])
          )
        )
        yield* Effect.promise(() => direct.configResetStat())
        const values = yield* client.mget(Array.from({ length: n }, (_, i) => `rc-long-${i}`))
        assert.lengthOf(values, n)
        values.forEach((v, i) => assert.strictEqual(v, i % 2 === 0 ? `v${i}` : null))
        assert.strictEqual((yield* commandCalls(direct)).mget, 2)
      })
    )

    it.scopedLive(
      "runScript: a server that does not know the script has it loaded and run; a nested error reply is an Error in place",
      () =>
        Effect.gen(function* () {
          const { client, direct } = yield* serverWithClient
          const script = RedisClient.script("return {KEYS[1], ARGV[1], redis.pcall('INCR', KEYS[2])}")
          yield* Effect.promise(() => direct.set("rc-script-s", "not a number"))
          for (let run = 0; run < 2; run++) {
            // The first run meets NOSCRIPT, the second finds it loaded.
            const reply = yield* client.runScript(script, ["rc-script-k", "rc-script-s"], ["a"])
            assert.isTrue(Array.isArray(reply))
            const [key, arg, nested] = reply as ReadonlyArray<unknown>
            assert.deepStrictEqual([key, arg], ["rc-script-k", "a"])
            assert.instanceOf(nested, Error)
          }
          assert.deepStrictEqual(yield* Effect.promise(() => direct.scriptExists(script.sha)), [true])
          const error = yield* failureOf(
            client.runScript(RedisClient.script("return redis.call('INCR', KEYS[1])"), ["rc-script-s"], [])
          )
          assert.strictEqual(error._tag, "CommandError")
        })
    )
  })
})
