import { randomUUID } from "node:crypto"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { ResultBackend, RetryPolicy } from "@effect-celery/core"
import { RedisClient, RedisUrl } from "@effect-celery/redis"
import { Sentinel, SentinelBackend } from "@effect-celery/sentinel"
import { pythonJson } from "../../../test-support/Python.js"
import { freePort, makeTlsFiles, redisServer } from "../../../test-support/RedisServer.js"
import type { SentinelTopology } from "../../../test-support/Sentinel.js"
import { sentinelTopology } from "../../../test-support/Sentinel.js"
import * as Metrics from "./Metrics.js"

const Topology = Context.GenericTag<SentinelTopology>("test/SentinelTopology")

/** A short retry budget: 3 attempts, 0.2 s apart. */
const shortBudget: RetryPolicy.RetryPolicy = { maxRetries: 2, intervalStart: 0.2, intervalStep: 0, intervalMax: 0.2 }

const sentinelsOf = (topo: SentinelTopology) => topo.sentinels.map((s) => ({ host: s.host, port: s.port }))

const makeSentinel = (config: Sentinel.Config) => Sentinel.make(config)

/** Celery logs every retry at ERROR; the budget tests expect them, the test output does not need them. */
const quietly = Logger.withMinimumLogLevel(LogLevel.None)

describe.concurrent("Sentinel", () => {
  it.effect("parses SENTINEL MASTER replies and judges them as redis-py's check_master_state", () =>
    Effect.sync(() => {
      const reply = (flags: string, others: number) => [
        "name",
        "mymaster",
        "ip",
        "10.0.0.5",
        "port",
        "6380",
        "flags",
        flags,
        "num-slaves",
        "1",
        "num-other-sentinels",
        String(others)
      ]
      const state = Sentinel.parseMasterState(reply("master", 2))!
      assert.deepStrictEqual(
        {
          host: state.host,
          port: state.port,
          isMaster: state.isMaster,
          isSdown: state.isSdown,
          isOdown: state.isOdown,
          others: state.numOtherSentinels
        },
        { host: "10.0.0.5", port: 6380, isMaster: true, isSdown: false, isOdown: false, others: 2 }
      )
      assert.isUndefined(Sentinel.rejectReason(state, 2))
      assert.include(Sentinel.rejectReason(state, 3) ?? "", "fewer than min_other_sentinels=3")
      assert.include(Sentinel.rejectReason(Sentinel.parseMasterState(reply("master,s_down", 2))!, 0) ?? "", "is down")
      assert.include(
        Sentinel.rejectReason(Sentinel.parseMasterState(reply("master,s_down,o_down", 2))!, 0) ?? "",
        "is down"
      )
      assert.include(
        Sentinel.rejectReason(Sentinel.parseMasterState(reply("slave", 2))!, 0) ?? "",
        "not flagged master"
      )
      assert.isUndefined(Sentinel.parseMasterState("ERR"))
    })
  )

  layer(Layer.scoped(Topology, sentinelTopology()), { excludeTestServices: true, timeout: "60 seconds" })(
    "discovery and connector (plain topology)",
    (it) => {
      it.scoped(
        "discovers the master, connects to it (ROLE master, db selected) and counts the connection while it is open",
        () =>
          Effect.gen(function* () {
            const topo = yield* Topology
            const sentinel = yield* makeSentinel({ sentinels: sentinelsOf(topo), masterName: topo.masterName, db: 3 })
            const address = yield* sentinel.discover
            assert.deepStrictEqual(address, { host: "127.0.0.1", port: topo.nodes[0]!.port })
            assert.strictEqual(yield* Metrics.connections(topo.masterName), 0)
            const info = yield* Effect.scoped(
              Effect.gen(function* () {
                const client = yield* sentinel.connect
                assert.strictEqual(yield* Metrics.connections(topo.masterName), 1)
                const role = yield* Effect.promise(() => client.sendCommand<Array<unknown>>(["ROLE"]))
                assert.strictEqual(role[0], "master")
                return yield* Effect.promise(() => client.sendCommand<string>(["CLIENT", "INFO"]))
              })
            )
            assert.include(info, " db=3 ")
            assert.strictEqual(yield* Metrics.connections(topo.masterName), 0)
          }).pipe(Metrics.isolated)
      )

      it.scoped("skips a dead sentinel and swaps the one that answered to the front (redis-py)", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const dead = { host: "127.0.0.1", port: yield* freePort }
          const live = sentinelsOf(topo)
          const sentinel = yield* makeSentinel({ sentinels: [dead, ...live], masterName: topo.masterName })
          const address = yield* sentinel.discover
          assert.strictEqual(address.port, topo.nodes[0]!.port)
          assert.deepStrictEqual(sentinel.sentinels(), [live[0]!, dead, live[1]!, live[2]!])
        })
      )

      it.scoped("a frozen sentinel (accepts, never answers) is skipped after sentinel_kwargs.socket_timeout", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const frozen = yield* redisServer()
          process.kill(frozen.process.pid()!, "SIGSTOP")
          const sentinel = yield* makeSentinel({
            sentinels: [{ host: "127.0.0.1", port: frozen.port }, ...sentinelsOf(topo)],
            masterName: topo.masterName,
            sentinelKwargs: { socket_timeout: 0.3 }
          })
          const started = Date.now()
          assert.strictEqual((yield* sentinel.discover).port, topo.nodes[0]!.port)
          // Skipped, not waited on: without the timeout discovery would hang on it for good.
          assert.isBelow(Date.now() - started, 5_000)
          assert.strictEqual(sentinel.sentinels()[0]!.port, topo.sentinels[0]!.port)
        })
      )

      it.scoped("an unknown master name is MasterNotFound from every sentinel, then the retry budget gives up", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const sentinel = yield* makeSentinel({ sentinels: sentinelsOf(topo), masterName: "nope" })
          const error = yield* Effect.flip(sentinel.discover)
          assert.strictEqual(error.reason, "MasterNotFound")
          assert.isTrue(error.message.startsWith("No master found for 'nope' : "), error.message)
          assert.strictEqual(error.message.split("no master named 'nope'").length - 1, 3, error.message)
          const started = Date.now()
          const exhausted = yield* Effect.flip(
            Effect.scoped(sentinel.connect).pipe(RetryPolicy.retry(shortBudget), quietly)
          )
          assert.strictEqual(exhausted._tag, "RetryLimitExceeded")
          if (exhausted._tag === "RetryLimitExceeded") {
            assert.strictEqual(exhausted.retries, 2)
            assert.strictEqual(exhausted.lastCause.reason, "MasterNotFound")
          }
          assert.isBelow(Date.now() - started, 5_000)
        })
      )

      it.scoped("min_other_sentinels: met with 2 (each sentinel sees 2 others), MasterNotFound with 3", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const ok = yield* makeSentinel({
            sentinels: sentinelsOf(topo),
            masterName: topo.masterName,
            minOtherSentinels: 2
          })
          assert.strictEqual((yield* ok.discover).port, topo.nodes[0]!.port)
          const strict = yield* makeSentinel({
            sentinels: sentinelsOf(topo),
            masterName: topo.masterName,
            minOtherSentinels: 3
          })
          const error = yield* Effect.flip(strict.discover)
          assert.strictEqual(error.reason, "MasterNotFound")
          assert.include(error.message, "sees 2 other sentinels, fewer than min_other_sentinels=3")
          const exhausted = yield* Effect.flip(strict.discover.pipe(RetryPolicy.retry(shortBudget), quietly))
          assert.strictEqual(exhausted._tag, "RetryLimitExceeded")
        })
      )

      it.scoped("the layer from a Celery URL provides RedisClient on the master", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const key = `sentinel-layer-${randomUUID()}`
          const value = yield* Effect.gen(function* () {
            const client = yield* RedisClient.RedisClient
            const sentinel = yield* Sentinel.Sentinel
            assert.strictEqual(client.db, 2)
            assert.strictEqual(client.uri, sentinel.uri)
            yield* client.command(["SET", key, "v"])
            return yield* client.command(["GET", key])
          }).pipe(
            Effect.provide(Sentinel.layerUrl(topo.url.replace(/;/g, "/2;") + "/2", { masterName: topo.masterName }))
          )
          assert.strictEqual(value, "v")
          const stored = yield* topo.nodeCommand(topo.nodes[0]!.port, [
            "EVAL",
            "redis.call('SELECT', 2) return redis.call('GET', KEYS[1])",
            "1",
            key
          ])
          assert.strictEqual(stored, "v")
        })
      )

      it.scoped("interop: real Celery's SentinelBackend reads what we store and we read what it stores", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const ours = `sentinel-ours-${randomUUID()}`
          const theirs = `sentinel-theirs-${randomUUID()}`
          const url = topo.url.replace(/;/g, "/4;") + "/4"
          const layer = SentinelBackend.layerUrl(url, { masterName: topo.masterName })
          yield* Effect.flatMap(ResultBackend.ResultBackend, (b) =>
            b.markAsDone(ours, { answer: 42, note: "café" })
          ).pipe(Effect.provide(layer))
          const script = [
            "import json, sys",
            "from celery import Celery",
            "from celery.backends.redis import SentinelBackend",
            "app = Celery()",
            `app.conf.result_backend_transport_options = {"master_name": ${JSON.stringify(topo.masterName)}}`,
            `b = SentinelBackend(app=app, url=${JSON.stringify(url)})`,
            `b.store_result(${JSON.stringify(theirs)}, {"from": "python"}, "SUCCESS")`,
            `print(json.dumps(b.get_task_meta(${JSON.stringify(ours)})["result"]))`
          ].join("\n")
          const printed = yield* pythonJson({ code: script })
          assert.deepStrictEqual(printed, { answer: 42, note: "café" })
          const meta = yield* Effect.flatMap(ResultBackend.ResultBackend, (b) => b.get(theirs)).pipe(
            Effect.provide(layer)
          )
          assert.strictEqual(meta.status, "SUCCESS")
          assert.deepStrictEqual(meta.result, { from: "python" })
        })
      )

      it.scoped("failFast: the layer fails with a typed error when no master can be found", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const error = yield* Effect.flip(
            Layer.build(Sentinel.layerUrl(topo.url, { masterName: "nope", failFast: true }))
          )
          assert.strictEqual(error._tag, "ConnectionError")
          if (error._tag === "ConnectionError") assert.strictEqual(error.reason, "MasterNotFound")
        })
      )

      it.scoped(
        "lazy by default: the layer builds without a master; the first call fails under the policy with MasterNotFound",
        () =>
          Effect.gen(function* () {
            const topo = yield* Topology
            const context = yield* Layer.build(
              SentinelBackend.layerUrl(topo.url, { masterName: "nope", retryPolicy: shortBudget })
            )
            const backend = Context.get(context, ResultBackend.ResultBackend)
            const error = yield* Effect.flip(backend.markAsDone(randomUUID(), 1).pipe(quietly))
            assert.strictEqual(error._tag, "RetryLimitExceeded")
            if (error._tag === "RetryLimitExceeded") assert.strictEqual(error.lastCause.reason, "MasterNotFound")
          })
      )

      it.scoped("the watcher subscribes to +switch-master on the first live sentinel", () =>
        Effect.gen(function* () {
          const topo = yield* Topology
          const [first, ...others] = sentinelsOf(topo)
          yield* makeSentinel({ sentinels: sentinelsOf(topo), masterName: topo.masterName })
          // The watcher's gauge says where it is subscribed; wait for it without sleeping blindly.
          yield* Metrics.until(
            Effect.map(Metrics.watchingOn(topo.masterName, first!), (n) => n === 1),
            "watching the first sentinel"
          )
          for (const other of others) assert.strictEqual(yield* Metrics.watchingOn(topo.masterName, other), 0)
          // Sentinels have no PUBSUB command; CLIENT LIST shows the subscribed connection.
          const clients = String(yield* topo.sentinelCommand(0, ["CLIENT", "LIST"]))
          assert.match(clients, / sub=1 .*cmd=subscribe/)
        }).pipe(Metrics.isolated)
      )
    }
  )

  it.live("all sentinels down: MasterNotFound listing each sentinel's error, quickly", () =>
    Effect.gen(function* () {
      const ports = [yield* freePort, yield* freePort]
      const sentinel = yield* makeSentinel({
        sentinels: ports.map((port) => ({ host: "127.0.0.1", port })),
        masterName: "mymaster"
      })
      const started = Date.now()
      const error = yield* Effect.flip(sentinel.discover)
      assert.strictEqual(error.reason, "MasterNotFound")
      for (const port of ports)
        assert.include(error.message, `Error connecting to sentinel://127.0.0.1:${port}/0: connect ECONNREFUSED`)
      const exhausted = yield* Effect.flip(sentinel.discover.pipe(RetryPolicy.retry(shortBudget), quietly))
      assert.strictEqual(exhausted._tag, "RetryLimitExceeded")
      assert.isBelow(Date.now() - started, 5_000)
    }).pipe(Effect.scoped)
  )

  it.live("configuration errors are ImproperlyConfigured", () =>
    Effect.gen(function* () {
      const sentinels = [{ host: "127.0.0.1", port: 1 }]
      const noName = yield* Effect.flip(makeSentinel({ sentinels }))
      assert.strictEqual(noName._tag, "ImproperlyConfigured")
      assert.include(noName.message, "master_name")
      const layerError = yield* Effect.flip(Layer.build(Sentinel.layerUrl("sentinel://127.0.0.1:1")))
      assert.strictEqual(layerError._tag, "ImproperlyConfigured")
      const badSsl = yield* Effect.flip(
        makeSentinel({ sentinels, masterName: "m", useSsl: { ssl_cert_reqs: "CERT_KITTY_CATS" } })
      )
      assert.strictEqual(badSsl._tag, "ImproperlyConfigured")
      assert.strictEqual(
        badSsl.message,
        "\nA rediss:// URL must have parameter ssl_cert_reqs and this must be set to CERT_REQUIRED, CERT_OPTIONAL, or CERT_NONE\n"
      )
      // The same ssl_cert_reqs table as RedisUrl: Python's ssl constants as numbers, names as strings.
      const numeric = yield* makeSentinel({ sentinels, masterName: "m", useSsl: { ssl_cert_reqs: 2 } })
      assert.strictEqual(numeric.masterName, "m")
      const digitString = yield* Effect.flip(
        makeSentinel({ sentinels, masterName: "m", useSsl: { ssl_cert_reqs: "2" } })
      )
      assert.strictEqual(digitString.message, RedisUrl.E_REDIS_SSL_CERT_REQS_MISSING_INVALID)
      const missingCa = yield* Effect.flip(
        makeSentinel({
          sentinels,
          masterName: "m",
          useSsl: { ssl_cert_reqs: "required", ssl_ca_certs: "/nonexistent/ca.pem" }
        })
      )
      assert.strictEqual(missingCa._tag, "ImproperlyConfigured")
      const minOther = yield* Effect.flip(makeSentinel({ sentinels, masterName: "m", minOtherSentinels: -1 }))
      assert.strictEqual(minOther._tag, "ImproperlyConfigured")
    }).pipe(Effect.scoped)
  )

  layer(
    Layer.scoped(
      Topology,
      Effect.flatMap(makeTlsFiles, (tls) =>
        sentinelTopology({ tls, password: "data-pw", sentinelPassword: "sentinel-pw" })
      )
    ),
    { excludeTestServices: true, timeout: "60 seconds" }
  )("TLS and passwords on sentinels and data nodes", (it) => {
    it.scoped("works end to end with sentinel_kwargs (password + TLS) and redis_backend_use_ssl", () =>
      Effect.gen(function* () {
        const topo = yield* Topology
        const files = topo.tls!
        const key = `sentinel-tls-${randomUUID()}`
        const url = topo.sentinels
          .map((s, i) => `sentinel://${i === 0 ? ":data-pw@" : ""}127.0.0.1:${s.port}/1`)
          .join(";")
        const value = yield* Effect.gen(function* () {
          const client = yield* RedisClient.RedisClient
          yield* client.command(["SET", key, "secure"])
          return yield* client.command(["GET", key])
        }).pipe(
          Effect.provide(
            Sentinel.layerUrl(url, {
              masterName: topo.masterName,
              sentinelKwargs: { password: "sentinel-pw", ssl: true, ssl_ca_certs: files.ca },
              useSsl: {
                ssl_cert_reqs: "CERT_REQUIRED",
                ssl_ca_certs: files.ca,
                ssl_certfile: files.clientCert,
                ssl_keyfile: files.clientKey
              }
            })
          )
        )
        assert.strictEqual(value, "secure")
      })
    )

    it.scoped("a wrong sentinel password is MasterNotFound naming WRONGPASS; none is NOAUTH; no hang", () =>
      Effect.gen(function* () {
        const topo = yield* Topology
        const files = topo.tls!
        const base = { sentinels: sentinelsOf(topo), masterName: topo.masterName, password: Redacted.make("data-pw") }
        const wrong = yield* makeSentinel({
          ...base,
          sentinelKwargs: { password: "wrong", ssl: true, ssl_ca_certs: files.ca }
        })
        const e1 = yield* Effect.flip(wrong.discover)
        assert.strictEqual(e1.reason, "MasterNotFound")
        assert.include(e1.message, "WRONGPASS")
        const none = yield* makeSentinel({ ...base, sentinelKwargs: { ssl: true, ssl_ca_certs: files.ca } })
        const e2 = yield* Effect.flip(none.discover)
        assert.include(e2.message, "NOAUTH")
        const exhausted = yield* Effect.flip(wrong.discover.pipe(RetryPolicy.retry(shortBudget), quietly))
        assert.strictEqual(exhausted._tag, "RetryLimitExceeded")
      })
    )

    it.scoped("sentinels over TLS need ssl in sentinel_kwargs (Celery passes {}); an unknown CA is refused", () =>
      Effect.gen(function* () {
        const topo = yield* Topology
        const files = topo.tls!
        const base = { sentinels: sentinelsOf(topo), masterName: topo.masterName }
        const plain = yield* makeSentinel({ ...base, sentinelKwargs: { password: "sentinel-pw", socket_timeout: 1 } })
        const e1 = yield* Effect.flip(plain.discover)
        assert.strictEqual(e1.reason, "MasterNotFound")
        const otherCa = yield* makeSentinel({
          ...base,
          sentinelKwargs: { password: "sentinel-pw", ssl: true, ssl_ca_certs: files.otherCa }
        })
        const e2 = yield* Effect.flip(otherCa.discover)
        assert.strictEqual(e2.reason, "MasterNotFound")
        // Data nodes: the right sentinels but a data-node CA that signed nothing here.
        const badData = yield* makeSentinel({
          ...base,
          password: "data-pw",
          sentinelKwargs: { password: "sentinel-pw", ssl: true, ssl_ca_certs: files.ca },
          useSsl: { ssl_cert_reqs: "required", ssl_ca_certs: files.otherCa }
        })
        assert.strictEqual((yield* badData.discover).port, topo.nodes[0]!.port)
        const e3 = yield* Effect.flip(Effect.scoped(badData.connect))
        assert.strictEqual(e3.reason, "Tls")
        assert.strictEqual(yield* Metrics.connections(topo.masterName), 0, "a refused connection is not counted open")
      }).pipe(Metrics.isolated)
    )
  })
})
