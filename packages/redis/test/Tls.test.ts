import { assert, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger } from "effect"
import { ConnectionError, ImproperlyConfigured } from "@effect-celery/core/Errors"
import { ResultBackend } from "@effect-celery/core/ResultBackend"
import { RedisBackend, RedisClient, RedisUrl } from "@effect-celery/redis"
import { driverOf } from "../src/internal/driver.js"
import type { RedisServer, TlsFiles } from "../../../test-support/RedisServer.js"
import { makeTlsFiles, redisServer } from "../../../test-support/RedisServer.js"
import { build, failureOf, uid } from "./Expect.js"

const q = encodeURIComponent

/** Warnings logged while running `effect`. */
const capturingWarnings = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag !== "Warning") return
      for (const m of Array.isArray(message) ? message : [message]) warnings.push(String(m))
    })
    const value = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return [value, warnings] as const
  })

const ping = (client: RedisClient.RedisClient) => client.command(["PING"])

/** One set of certificates and two TLS servers for the whole file (openssl key generation is slow). */
class TlsEnv extends Context.Tag("test/TlsEnv")<
  TlsEnv,
  {
    readonly files: TlsFiles
    /** Verifies nothing about clients. */
    readonly server: RedisServer
    /** `tls-auth-clients yes`: a client certificate signed by the CA is required. */
    readonly authServer: RedisServer
  }
>() {
  static readonly layer = Layer.scoped(
    TlsEnv,
    Effect.gen(function* () {
      const files = yield* makeTlsFiles
      const tls = { cert: files.serverCert, key: files.serverKey, ca: files.ca }
      const [server, authServer] = yield* Effect.all(
        [redisServer({ tls }), redisServer({ tls: { ...tls, authClients: "yes" } })],
        {
          concurrency: 2
        }
      )
      return { files, server, authServer }
    })
  )
}

layer(TlsEnv.layer, { excludeTestServices: true, timeout: "60 seconds" })("TLS", (it) => {
  it.scoped("CERT_REQUIRED with the right CA connects; with another CA it fails with a typed ConnectionError", () =>
    Effect.gen(function* () {
      const { files, server } = yield* TlsEnv

      const [client, warnings] = yield* capturingWarnings(
        build(
          RedisClient.layerUrl(
            `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=${q(files.ca)}`
          )
        )
      )
      assert.strictEqual(yield* ping(client), "PONG")
      assert.deepStrictEqual(warnings, [])
      assert.strictEqual(client.uri, `rediss://127.0.0.1:${server.port}/0`)

      const viaConfig = yield* build(
        RedisClient.layer({ host: "127.0.0.1", port: server.port, tls: { certReqs: "required", caFile: files.ca } })
      )
      assert.strictEqual(yield* ping(viaConfig), "PONG")

      const wrong = yield* failureOf(
        build(
          RedisClient.layerUrl(
            `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${q(files.otherCa)}`
          )
        )
      )
      assert.instanceOf(wrong, ConnectionError)
      assert.strictEqual(wrong.reason, "Tls")

      // No CA at all: only the system roots, which do not know our test CA.
      const noCa = yield* failureOf(
        build(RedisClient.layerUrl(`rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=required`))
      )
      assert.instanceOf(noCa, ConnectionError)
    })
  )

  it.scoped("CERT_OPTIONAL verifies like CERT_REQUIRED (OpenSSL client mode) and logs Celery's warning", () =>
    Effect.gen(function* () {
      const { files, server } = yield* TlsEnv
      const [client, warnings] = yield* capturingWarnings(
        build(
          RedisClient.layerUrl(
            `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=CERT_OPTIONAL&ssl_ca_certs=${q(files.ca)}`
          )
        )
      )
      assert.strictEqual(yield* ping(client), "PONG")
      assert.deepStrictEqual(warnings, [RedisUrl.W_REDIS_SSL_CERT_OPTIONAL])
      const [wrong] = yield* capturingWarnings(
        failureOf(
          build(
            RedisClient.layerUrl(
              `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=optional&ssl_ca_certs=${q(files.otherCa)}`
            )
          )
        )
      )
      assert.instanceOf(wrong, ConnectionError)
    })
  )

  it.scoped("CERT_NONE connects without verification and logs Celery's warning", () =>
    Effect.gen(function* () {
      const { files, server } = yield* TlsEnv
      const [client, warnings] = yield* capturingWarnings(
        build(
          RedisClient.layerUrl(
            `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=CERT_NONE&ssl_ca_certs=${q(files.otherCa)}`
          )
        )
      )
      assert.strictEqual(yield* ping(client), "PONG")
      assert.deepStrictEqual(warnings, [RedisUrl.W_REDIS_SSL_CERT_NONE])
      // The same through redis_backend_use_ssl.
      const [viaUseSsl, warnings2] = yield* capturingWarnings(
        build(RedisClient.layerUrl(`rediss://127.0.0.1:${server.port}/0`, { useSsl: { ssl_cert_reqs: "none" } }))
      )
      assert.strictEqual(yield* ping(viaUseSsl), "PONG")
      assert.deepStrictEqual(warnings2, [RedisUrl.W_REDIS_SSL_CERT_NONE])
    })
  )

  it.scoped("ssl_check_hostname: the server name is checked only when asked", () =>
    Effect.gen(function* () {
      const { files, server } = yield* TlsEnv
      const config = (checkHostname: boolean, servername: string) =>
        RedisClient.layer({
          host: "127.0.0.1",
          port: server.port,
          tls: { certReqs: "required", caFile: files.ca, checkHostname, servername }
        })
      // redis-py's default: the chain is verified, the name is not.
      assert.strictEqual(yield* ping(yield* build(config(false, "not-the-server.example"))), "PONG")
      assert.strictEqual(yield* ping(yield* build(config(true, "localhost"))), "PONG")
      const mismatch = yield* failureOf(build(config(true, "not-the-server.example")))
      assert.instanceOf(mismatch, ConnectionError)
      assert.strictEqual(mismatch.reason, "Tls")
      // Through the URL (IP SAN 127.0.0.1 matches).
      const url = `rediss://127.0.0.1:${server.port}/0?ssl_cert_reqs=required&ssl_ca_certs=${q(files.ca)}&ssl_check_hostname=true`
      assert.strictEqual(yield* ping(yield* build(RedisClient.layerUrl(url))), "PONG")
    })
  )

  it.scoped("client certificates (tls-auth-clients yes) work with ssl_certfile / ssl_keyfile", () =>
    Effect.gen(function* () {
      const { authServer: server, files } = yield* TlsEnv
      const base = `rediss://127.0.0.1:${server.port}/1?ssl_cert_reqs=required&ssl_ca_certs=${q(files.ca)}`
      const client = yield* build(
        RedisClient.layerUrl(`${base}&ssl_certfile=${q(files.clientCert)}&ssl_keyfile=${q(files.clientKey)}`)
      )
      assert.strictEqual(yield* ping(client), "PONG")
      yield* client.command(["SET", "tls-client-cert", "1"])
      assert.strictEqual(yield* client.command(["GET", "tls-client-cert"]), "1")
      assert.strictEqual(client.db, 1)
      // A dedicated connection gets the same TLS options.
      const sub = yield* driverOf(client).connect
      assert.strictEqual(yield* Effect.promise(() => sub.ping()), "PONG")

      const anonymous = yield* failureOf(build(RedisClient.layerUrl(base)))
      assert.instanceOf(anonymous, ConnectionError)
    })
  )

  it.scoped(
    "redis:// with redis_backend_use_ssl connects over TLS (Celery 5.7, #10313): verified against the CA, stores and waits",
    () =>
      Effect.gen(function* () {
        const { files, server } = yield* TlsEnv
        const url = `redis://127.0.0.1:${server.port}/0`
        const useSsl = { ssl_cert_reqs: "required", ssl_ca_certs: files.ca }
        const [client, warnings] = yield* capturingWarnings(build(RedisClient.layerUrl(url, { useSsl })))
        assert.strictEqual(yield* ping(client), "PONG")
        assert.deepStrictEqual(warnings, [])
        assert.strictEqual(client.uri, url, "the URL as given")

        // The handshake really happens: an untrusted CA is a rejected TLS handshake.
        const wrong = yield* failureOf(
          build(RedisClient.layerUrl(url, { useSsl: { ...useSsl, ssl_ca_certs: files.otherCa } }))
        )
        assert.instanceOf(wrong, ConnectionError)
        assert.strictEqual(wrong.reason, "Tls")

        // The backend and its Pub/Sub consumer, both over TLS.
        const services = yield* Layer.build(RedisBackend.layerUrl(url, { connection: { useSsl } }))
        const backend = Context.get(services, ResultBackend)
        const id = uid("tls-use-ssl")
        const waiting = yield* Effect.fork(backend.waitFor(id, { timeout: "10 seconds" }))
        yield* backend.markAsDone(id, { over: "tls" })
        assert.deepStrictEqual((yield* Fiber.join(waiting)).result, { over: "tls" })
        assert.isTrue(yield* backend.exists(id))
      })
  )

  it.scoped("configuration errors fail the layer with Celery's messages", () =>
    Effect.gen(function* () {
      const { files } = yield* TlsEnv
      const missing = yield* failureOf(build(RedisClient.layerUrl("rediss://127.0.0.1:1/0")))
      assert.instanceOf(missing, ImproperlyConfigured)
      assert.strictEqual(missing.message, RedisUrl.E_REDIS_SSL_CERT_REQS_MISSING_INVALID)

      const kitty = yield* failureOf(
        build(RedisClient.layerUrl("rediss://127.0.0.1:1/0?ssl_cert_reqs=CERT_KITTY_CATS"))
      )
      assert.strictEqual(kitty.message, RedisUrl.E_REDIS_SSL_CERT_REQS_MISSING_INVALID)

      const mismatch = yield* failureOf(
        build(RedisClient.layerUrl(`redis://127.0.0.1:1/0?ssl_cert_reqs=required&ssl_ca_certs=${q(files.ca)}`))
      )
      assert.instanceOf(mismatch, ImproperlyConfigured)
      assert.strictEqual(mismatch.message, RedisUrl.E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH)

      // With redis_backend_use_ssl too: the URL's own SSL parameters are still the mismatch.
      const viaUseSsl = yield* failureOf(
        build(
          RedisClient.layerUrl(`redis://127.0.0.1:1/0?ssl_ca_certs=${q(files.ca)}`, {
            useSsl: { ssl_cert_reqs: "required" }
          })
        )
      )
      assert.strictEqual(viaUseSsl.message, RedisUrl.E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH)

      const unreadable = yield* failureOf(
        build(
          RedisClient.layerUrl(
            `rediss://127.0.0.1:1/0?ssl_cert_reqs=required&ssl_ca_certs=${q(files.dir + "/nope.pem")}`
          )
        )
      )
      assert.instanceOf(unreadable, ImproperlyConfigured)
      assert.include(unreadable.message, "ssl_ca_certs")
    })
  )
})
