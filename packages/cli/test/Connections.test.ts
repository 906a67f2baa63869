/**
 * The CLI over every kind of connection the URL can name, each against real servers on loopback:
 * `rediss://` (TLS verified against a CA; the TLS peer in `doctor`), `redis+socket://` (a unix
 * socket), and `sentinel://` (a real Sentinel topology). Results are written raw, as Celery
 * writes them; no worker is needed to read them back.
 */
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createClient } from "redis"
import type { SentinelTopology } from "../../../test-support/Sentinel.js"
import { sentinelTopology } from "../../../test-support/Sentinel.js"
import type { RedisServer, TlsFiles } from "../../../test-support/RedisServer.js"
import { HarnessError, makeTlsFiles, redisServer } from "../../../test-support/RedisServer.js"
import { lines, runCli, uid } from "./CliEnv.js"

interface Servers {
  readonly tlsFiles: TlsFiles
  readonly tls: RedisServer
  readonly unix: RedisServer
  readonly sentinel: SentinelTopology
}

const Servers = Context.GenericTag<Servers>("effect-celery/test/cli/Servers")

const servers = Layer.scoped(
  Servers,
  Effect.gen(function* () {
    const tlsFiles = yield* makeTlsFiles
    const [tls, unix, sentinel] = yield* Effect.all(
      [
        redisServer({ tls: { cert: tlsFiles.serverCert, key: tlsFiles.serverKey, ca: tlsFiles.ca } }),
        redisServer({ unixSocket: true }),
        sentinelTopology({ sentinels: 1, quorum: 1 })
      ],
      { concurrency: "unbounded" }
    )
    return { tlsFiles, tls, unix, sentinel }
  })
)

const meta = (id: string, result: string) =>
  `{"status": "SUCCESS", "result": ${result}, "traceback": null, "children": [], "date_done": "2026-12-05T12:00:00.000000+00:00", "task_id": "${id}"}`

/** SET over a short-lived connection (a unix socket path or a URL). */
const set = (target: { readonly path: string } | { readonly url: string }, key: string, value: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = createClient("path" in target ? { socket: { path: target.path } } : { url: target.url })
      client.on("error", () => {})
      await client.connect()
      try {
        await client.set(key, value)
      } finally {
        await client.quit()
      }
    },
    catch: (cause) => new HarnessError({ message: `SET ${key}`, cause })
  })

layer(servers, { excludeTestServices: true, timeout: "90 seconds" })(
  "effect-celery over TLS, unix socket, Sentinel",
  (it) => {
    it.effect(
      "rediss:// verified against the CA (URL or CELERY_REDIS_BACKEND_USE_SSL): doctor reports the TLS peer; a wrong CA is one line, exit 5",
      () =>
        Effect.gen(function* () {
          const { tls, tlsFiles } = yield* Servers
          const url = `rediss://127.0.0.1:${tls.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(tlsFiles.ca)}`
          const doctor = yield* runCli(["doctor", "--url", url])
          assert.strictEqual(doctor.code, 0, doctor.stderr)
          assert.include(doctor.stdout, `url:         rediss://127.0.0.1:${tls.port}/0`)
          assert.include(doctor.stdout, `connection:  redis over TLS at 127.0.0.1:${tls.port}`)
          assert.include(doctor.stdout, `tls:         ssl_cert_reqs=required ssl_ca_certs=${tlsFiles.ca}`)
          assert.match(
            doctor.stdout,
            /tls peer: +CN=localhost, issued by CN=effect-celery test CA, valid to .+, TLSv1\.[23], verified/
          )
          const missing = uid("tls")
          const get = yield* runCli(["result", "get", "--json", missing, "--url", url])
          assert.strictEqual(get.code, 3, get.stderr)
          assert.include(get.stdout, '"state": "PENDING"')
          // Without --url: the URL and redis_backend_use_ssl from the environment, as layerConfig() reads them.
          const fromEnv = yield* runCli(["result", "get", missing], {
            env: {
              CELERY_RESULT_BACKEND: `rediss://127.0.0.1:${tls.port}/0`,
              CELERY_REDIS_BACKEND_USE_SSL: JSON.stringify({ ssl_cert_reqs: "required", ssl_ca_certs: tlsFiles.ca })
            }
          })
          assert.strictEqual(fromEnv.code, 3, fromEnv.stderr)
          const wrongCa = `rediss://:s3cr3t-pass@127.0.0.1:${tls.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(tlsFiles.otherCa)}`
          const refused = yield* runCli(["result", "get", missing, "--url", wrongCa])
          assert.strictEqual(refused.code, 5)
          assert.strictEqual(lines(refused.stderr).length, 1, refused.stderr)
          assert.include(refused.stderr, `ConnectionError(Tls) rediss://:**@127.0.0.1:${tls.port}/0:`)
          assert.notInclude(refused.stderr, "s3cr3t-pass")
        })
    )

    it.effect("redis+socket:// reads through the unix socket; --db selects another database", () =>
      Effect.gen(function* () {
        const { unix } = yield* Servers
        const path = unix.socketPath!
        const id = uid("unix")
        yield* set({ path }, `celery-task-meta-${id}`, meta(id, '"over the socket"'))
        const get = yield* runCli(["result", "get", id, "--url", `redis+socket://${path}`])
        assert.strictEqual(get.code, 0, get.stderr)
        assert.include(get.stdout, `${id}  SUCCESS\n  result:    'over the socket'`)
        const otherDb = yield* runCli(["result", "get", id, "--url", `redis+socket://${path}`, "--db", "3"])
        assert.strictEqual(otherDb.code, 3, "nothing stored in db 3")
        const doctor = yield* runCli(["doctor", "--url", `redis+socket://${path}`])
        assert.strictEqual(doctor.code, 0, doctor.stderr)
        assert.include(doctor.stdout, `connection:  redis over unix socket ${path}`)
      })
    )

    it.effect("sentinel:// finds the master by --master-name and reads from it; without it, exit 2", () =>
      Effect.gen(function* () {
        const { sentinel } = yield* Servers
        const master = yield* sentinel.masterAddress
        const id = uid("sentinel")
        yield* set({ url: `redis://${master.host}:${master.port}/0` }, `celery-task-meta-${id}`, meta(id, "7"))
        const get = yield* runCli([
          "result",
          "get",
          "--json",
          id,
          "--url",
          sentinel.url,
          "--master-name",
          sentinel.masterName
        ])
        assert.strictEqual(get.code, 0, get.stderr)
        assert.include(get.stdout, '"result": 7')
        const doctor = yield* runCli(["doctor", "--url", sentinel.url, "--master-name", sentinel.masterName])
        assert.strictEqual(doctor.code, 0, doctor.stderr)
        assert.include(doctor.stdout, `connection:  sentinel (master ${sentinel.masterName}) via 127.0.0.1:`)
        assert.include(doctor.stdout, "role master")
        const noName = yield* runCli(["result", "get", id, "--url", sentinel.url])
        assert.strictEqual(noName.code, 2)
        assert.include(noName.stderr, "--master-name")
      })
    )
  }
)
