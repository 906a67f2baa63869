import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as fc from "fast-check"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import { formatFloat } from "@effect-celery/core/PyJson"
import { RedisUrl } from "@effect-celery/redis"
import { pythonJson } from "../../../test-support/Python.js"

const here = Path.dirname(fileURLToPath(import.meta.url))

interface Case {
  readonly url: string
  readonly options?: RedisUrl.UrlOptions
}

type Tagged = ReadonlyArray<unknown>

type PyResult =
  | {
      readonly ok: true
      readonly connparams: Record<string, Tagged>
      readonly uri: string
      readonly warnings: ReadonlyArray<string>
    }
  | { readonly ok: false; readonly error: string; readonly message: string }

/** Run the real Celery on every case at once (one Python start for the whole file). */
const celery = (cases: ReadonlyArray<Case>) =>
  pythonJson<ReadonlyArray<PyResult>>(
    { script: Path.join(here, "python", "celery_url.py") },
    { input: cases.map((c) => ({ url: c.url, options: pyOptions(c.options ?? {}) })) }
  )

const pyOptions = (options: RedisUrl.UrlOptions) =>
  Object.fromEntries(
    Object.entries(options).map(([k, v]) => [k, Redacted.isRedacted(v) ? Redacted.value(v as Redacted.Redacted) : v])
  )

const FLOAT_KEYS = new Set(["socket_timeout", "socket_connect_timeout"])

const pyFloatRepr = (n: number) =>
  Number.isNaN(n) ? "nan" : n === Infinity ? "inf" : n === -Infinity ? "-inf" : formatFloat(n)

/** Our parse in the Python script's tagged shape. */
const tagged = (parsed: RedisUrl.ParsedUrl): Record<string, Tagged> => {
  const out: Record<string, Tagged> = {}
  for (const [k, v] of Object.entries(parsed.connparams)) {
    if (v === null) out[k] = ["None"]
    else if (typeof v === "boolean") out[k] = ["bool", v]
    else if (typeof v === "number") out[k] = FLOAT_KEYS.has(k) ? ["float", pyFloatRepr(v)] : ["int", v]
    else if (typeof v === "string") out[k] = ["str", v]
    else if (Redacted.isRedacted(v)) out[k] = ["str", Redacted.value(v)]
    else out[k] = ["list", [...v]]
  }
  if (parsed.connectionClass !== "Connection") out["connection_class"] = ["class", parsed.connectionClass]
  return out
}

const ours = (c: Case): PyResult =>
  Either.match(RedisUrl.parse(c.url, c.options ?? {}), {
    onLeft: (e) => ({ ok: false, error: "ImproperlyConfigured", message: e.message }),
    onRight: (p) => ({ ok: true, connparams: tagged(p), uri: p.uri, warnings: p.warnings.map((w) => w) })
  })

/** Compare with Celery: same connparams/uri/warnings, or a failure with the same message. */
const mismatches = (cases: ReadonlyArray<Case>, expected: ReadonlyArray<PyResult>) =>
  cases.flatMap((c, i) => {
    const py = expected[i]!
    const ts = ours(c)
    if (py.ok && ts.ok) {
      const same =
        JSON.stringify(sortKeys(py.connparams)) === JSON.stringify(sortKeys(ts.connparams)) &&
        py.uri === ts.uri &&
        JSON.stringify(py.warnings) === JSON.stringify(ts.warnings)
      return same ? [] : [{ case: c, python: py, ours: ts }]
    }
    if (!py.ok && !ts.ok && py.message === ts.message) return []
    return [{ case: c, python: py, ours: ts }]
  })

const sortKeys = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)))

const useSsl = {
  ssl_cert_reqs: "CERT_REQUIRED",
  ssl_ca_certs: "/path/to/ca.crt",
  ssl_certfile: "/path/to/client.crt",
  ssl_keyfile: "/path/to/client.key"
}

/** The spec's §8 table, Celery's own test URLs, and the edges of kombu/urllib parsing. */
const VECTORS: ReadonlyArray<Case> = [
  // spec §8 "Observed parses"
  { url: "redis://" },
  { url: "redis://localhost" },
  { url: "redis://user:secret@redishost:6380/3" },
  { url: "redis://user:p%40ss@h/5?virtual_host=7" },
  { url: "redis://h/?virtual_host=7" },
  {
    url: "redis://h:6379/2?socket_timeout=5&retry_on_timeout=true&max_connections=10&health_check_interval=25&socket_keepalive=no&foo=bar"
  },
  { url: "redis://:bosco@vandelay.com:123//1" },
  {
    url: "rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=%2Fvar%2Fssl%2Fca.pem&ssl_certfile=%2Fvar%2Fssl%2Fredis-server-cert.pem&ssl_keyfile=%2Fvar%2Fssl%2Fprivate%2Fworker-key.pem"
  },
  { url: "rediss://h:6380/0" },
  { url: "redis+socket:///run/redis.sock?virtual_host=3" },
  // Celery's t/unit/backends/test_redis.py
  { url: "redis://:bosco@vandelay.com:123//1?socket_timeout=30&socket_connect_timeout=100" },
  { url: "redis+socket:///tmp/redis.sock?virtual_host=/3" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_REQUIRED" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=required" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_OPTIONAL" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=optional" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_NONE" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_KITTY_CATS" },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=" },
  {
    url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=%2Fvar%2Fssl%2Fmyca.pem&ssl_certfile=%2Fvar%2Fssl%2Fredis-server-cert.pem&ssl_keyfile=%2Fvar%2Fssl%2Fprivate%2Fworker-key.pem"
  },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=%252Fdouble%252Fencoded.pem" },
  // redis:// with redis_backend_use_ssl: Celery 5.7's rule (#10313), not 5.2.6's; see below.
  { url: "rediss://:bosco@vandelay.com:123//1", options: { useSsl } },
  { url: "rediss://:bosco@vandelay.com:123//1?ssl_cert_reqs=CERT_NONE", options: { useSsl } },
  { url: "redis://vandelay.com:123//1?ssl_cert_reqs=CERT_REQUIRED" },
  { url: "redis://vandelay.com:123//1?ssl_ca_certs=%2Fx" },
  { url: "redis://vandelay.com:123//1?ssl_check_hostname=true" },
  { url: "rediss://vandelay.com:123//1?ssl_cert_reqs=required&ssl_check_hostname=false" },
  { url: "redis+socket:///tmp/redis.sock", options: { useSsl } },
  { url: "rediss://h/0", options: { useSsl: { ssl_cert_reqs: 2 } } },
  { url: "rediss://h/0", options: { useSsl: { ssl_cert_reqs: 0 } } },
  { url: "rediss://h/0", options: { useSsl: { ssl_cert_reqs: 7 } } },
  // db from the path
  { url: "redis://h/abc" },
  { url: "redis://h//" },
  { url: "redis://h/%2F3" },
  { url: "redis://h/%203%20" },
  { url: "redis://h/-1" },
  { url: "redis://h/+2" },
  { url: "redis://h/1_0" },
  { url: "redis://h/%EF%BC%93" },
  { url: "redis://h/%ff" },
  { url: "redis://h/0?db=5" },
  { url: "redis://h/0?db=x" },
  { url: "redis://h/1;params" },
  { url: "redis://h/1#fragment" },
  { url: "redis://h/1?virtual_host=2#f?x=1" },
  // schemes
  { url: "REDIS://h" },
  { url: "unix:///tmp/redis.sock" },
  { url: "socket:///tmp/redis.sock" },
  { url: "redis+socket://" },
  { url: "redis+socket://host/redis.sock?virtual_host=2" },
  { url: "rediss+socket:///x.sock" },
  { url: "redis+foo://h:1/2" },
  // query parsers
  { url: "redis://h?socket_timeout=abc" },
  { url: "redis://h?socket_connect_timeout=1e3" },
  { url: "redis://h?socket_timeout=inf" },
  { url: "redis://h?socket_timeout=-Infinity" },
  { url: "redis://h?socket_timeout=nan" },
  { url: "redis://h?socket_timeout=1_0.5" },
  { url: "redis://h?socket_timeout=%201.5%20" },
  { url: "redis://h?socket_timeout=1__0" },
  { url: "redis://h?socket_timeout=.5" },
  { url: "redis://h?socket_timeout=5." },
  { url: "redis://h?max_connections=abc" },
  { url: "redis://h?health_check_interval=1.5" },
  { url: "redis://h?retry_on_error=xy" },
  { url: "redis://h?socket_keepalive=" },
  { url: "redis://h?socket_keepalive=F&retry_on_timeout=yes" },
  { url: "redis://h?socket_keepalive=nO" },
  { url: "redis://h?a=1&a=2&b" },
  { url: "redis://h?x=%zz&y=a+b&z=%E2%82%AC" },
  { url: "redis://h?password=fromquery&host=other" },
  // netloc
  { url: "redis://[::1]:6380/1" },
  { url: "redis://[::1/" },
  { url: "redis://::1]/" },
  { url: "redis://[1.2.3.4]/" },
  { url: "redis://[zz]/" },
  { url: "redis://x[::1]/" },
  { url: "redis://[::1]x/" },
  { url: "redis://[v1.x]/" },
  { url: "redis://h:abc/" },
  { url: "redis://h:70000/" },
  { url: "redis://h:0/" },
  { url: "redis://h:/" },
  { url: "redis://MyHost.Example/" },
  { url: "redis://us%65r:p%3Aw@h/" },
  { url: "redis://user@h/" },
  { url: "redis://:@h/" },
  { url: "redis://%E2%82%AC@h/" },
  { url: "redis://a@b@h:1/2" },
  { url: "redis://u:p:q@h/" },
  { url: "redis://h\u2100x/" },
  { url: "redis://h\t\n/1" },
  { url: "redis://h%20space/" },
  { url: "redis://h!'()*/" },
  // redis_* settings as defaults
  { url: "redis://", options: { host: "h2", port: 6390, password: "pw", username: "u" } },
  { url: "redis://h:1/", options: { host: "h2", port: 6390, password: Redacted.make("pw") } },
  { url: "redis://h/", options: { db: 4 } },
  { url: "redis+socket:///s.sock", options: { db: 4 } },
  {
    url: "redis://h/",
    options: {
      socketTimeout: 5,
      socketConnectTimeout: 2,
      socketKeepalive: true,
      retryOnTimeout: true,
      maxConnections: 9,
      healthCheckInterval: 3
    }
  },
  { url: "redis://h/", options: { socketTimeout: null } }
]

describe("RedisUrl", () => {
  it.live(
    "parses like the real Celery 5.2.6 (spec table, Celery's tests, urllib edges)",
    () =>
      Effect.gen(function* () {
        const expected = yield* celery(VECTORS)
        assert.lengthOf(expected, VECTORS.length)
        assert.deepStrictEqual(mismatches(VECTORS, expected), [])
        // Make sure the vectors really cover both outcomes.
        assert.isAbove(expected.filter((r) => r.ok).length, 30)
        assert.isAbove(expected.filter((r) => !r.ok).length, 20)
      }),
    { timeout: 60_000 }
  )

  it.live(
    "agrees with Celery on random URL-like strings",
    () =>
      Effect.gen(function* () {
        const alphabet = [
          ..."abcXYZ019",
          ":",
          "/",
          "@",
          "?",
          "#",
          "&",
          "=",
          "+",
          "%",
          "[",
          "]",
          ";",
          ".",
          "-",
          "_",
          " ",
          "\t",
          "%2F",
          "%3A",
          "%40",
          "%zz",
          "%E2%82%AC",
          "%ff",
          "é",
          "３",
          "\u2100",
          "::1",
          "virtual_host=",
          "db=",
          "socket_timeout=",
          "ssl_cert_reqs=",
          "CERT_NONE",
          "required"
        ]
        const body = fc.array(fc.constantFrom(...alphabet), { maxLength: 14 }).map((parts) => parts.join(""))
        const scheme = fc.constantFrom(
          "redis://",
          "redis://",
          "redis://",
          "rediss://",
          "rediss://",
          "redis+socket://",
          "redis+x://",
          "socket://",
          "REDIS://"
        )
        const urls = fc.sample(
          fc.tuple(scheme, body).map(([s, b]) => s + b),
          { numRuns: 600, seed: 4242 }
        )
        const cases = urls.map((url) => ({ url }))
        const expected = yield* celery(cases)
        // Backend names are resolved by Celery's import machinery (the texts vary with what is
        // importable); when both refuse a name, the messages may differ.
        const diff = mismatches(cases, expected).filter(
          (m) =>
            !(
              m.python.ok === false &&
              m.ours.ok === false &&
              /^(No module named|Unknown result backend|Not a result backend)/.test(m.ours.message)
            )
        )
        assert.isAbove(expected.filter((r) => r.ok).length, 100)
        assert.deepStrictEqual(diff, [])
      }),
    { timeout: 60_000 }
  )

  it.effect("the spec table, as values", () =>
    Effect.gen(function* () {
      const p = yield* RedisUrl.parse("redis://user:secret@redishost:6380/3")
      assert.strictEqual(p.host, "redishost")
      assert.strictEqual(p.port, 6380)
      assert.strictEqual(p.db, 3)
      assert.strictEqual(p.username, "user")
      assert.strictEqual(Redacted.value(p.password!), "secret")
      assert.strictEqual(RedisUrl.asUri(p), "redis://user:**@redishost:6380/3")
      assert.notInclude(JSON.stringify(p), "secret")

      const s = yield* RedisUrl.parse("redis+socket:///run/redis.sock?virtual_host=3")
      assert.strictEqual(s.path, "/run/redis.sock")
      assert.strictEqual(s.db, 3)
      assert.isUndefined(s.host)
      assert.strictEqual(s.uri, "socket:///run/redis.sock")

      const ssl = yield* RedisUrl.parse("rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=%2Fvar%2Fssl%2Fca.pem")
      assert.strictEqual(ssl.connectionClass, "SSLConnection")
      assert.strictEqual(ssl.certReqs, "none")
      assert.deepStrictEqual(ssl.warnings, [RedisUrl.W_REDIS_SSL_CERT_NONE])
      assert.strictEqual(ssl.connparams["ssl_ca_certs"], "/var/ssl/ca.pem")

      const v6 = yield* RedisUrl.parse("redis://[::1]:6380/1")
      assert.strictEqual(v6.host, "::1")
      assert.strictEqual(v6.db, 1)

      assert.strictEqual((yield* RedisUrl.parse("redis://")).uri, "redis://")
      assert.strictEqual((yield* RedisUrl.parse("redis://localhost")).uri, "redis://localhost/")
      assert.strictEqual((yield* RedisUrl.parse("redis://h/?virtual_host=7")).db, 0)
      assert.strictEqual((yield* RedisUrl.parse("redis://h//1")).db, 1)
      assert.strictEqual((yield* RedisUrl.parse("redis://h/%2F3")).db, 3)
    })
  )

  it.effect("valkey:// and valkeys:// are aliases of redis:// and rediss://", () =>
    Effect.gen(function* () {
      const v = yield* RedisUrl.parse("valkey://user:secret@vhost:6380/3")
      const r = yield* RedisUrl.parse("redis://user:secret@vhost:6380/3")
      assert.deepStrictEqual(
        [v.host, v.port, v.db, v.username, v.connectionClass],
        [r.host, r.port, r.db, r.username, r.connectionClass]
      )
      assert.strictEqual(Redacted.value(v.password!), "secret")
      assert.strictEqual(v.uri, "redis://user:**@vhost:6380/3")
      const vs = yield* RedisUrl.parse("valkeys://vhost:6380/0?ssl_cert_reqs=required")
      assert.strictEqual(vs.connectionClass, "SSLConnection")
      assert.strictEqual(vs.certReqs, "required")
      assert.strictEqual(vs.uri.slice(0, 9), "rediss://")
      const sock = yield* RedisUrl.parse("valkey+socket:///run/valkey.sock")
      assert.strictEqual(sock.path, "/run/valkey.sock")
      // SSL parameters with the plain scheme are the same error as with redis://.
      const mismatch = RedisUrl.parse("valkey://h/0?ssl_cert_reqs=none")
      assert.isTrue(Either.isLeft(mismatch))
      assert.isTrue(Either.isLeft(RedisUrl.parse("valkeyx://h/0")))
    })
  )

  it.effect(
    "redis:// with redis_backend_use_ssl is TLS, as Celery 5.7 reads it (#10313): rediss://'s parameters, the URL's scheme",
    () =>
      Effect.gen(function* () {
        const plain = yield* RedisUrl.parse("redis://:bosco@vandelay.com:123//1", { useSsl })
        const tls = yield* RedisUrl.parse("rediss://:bosco@vandelay.com:123//1", { useSsl })
        assert.strictEqual(plain.connectionClass, "SSLConnection")
        assert.strictEqual(plain.certReqs, "required")
        assert.deepStrictEqual(plain.connparams, tls.connparams)
        assert.deepStrictEqual(plain.warnings, tls.warnings)
        assert.strictEqual(plain.uri.slice(0, 8), "redis://")
        // The same checks as any SSL connection: ssl_cert_reqs required, and its warnings.
        assert.isTrue(Either.isLeft(RedisUrl.parse("redis://h/0", { useSsl: { ssl_ca_certs: "/x" } })))
        const none = yield* RedisUrl.parse("valkey://h/0", { useSsl: { ssl_cert_reqs: "none" } })
        assert.strictEqual(none.connectionClass, "SSLConnection")
        assert.deepStrictEqual(none.warnings, [RedisUrl.W_REDIS_SSL_CERT_NONE])
        // An empty redis_backend_use_ssl is falsy in Celery: plain TCP.
        assert.strictEqual((yield* RedisUrl.parse("redis://h/0", { useSsl: {} })).connectionClass, "Connection")
      })
  )

  it.effect("failures carry Python's and Celery's messages", () =>
    Effect.gen(function* () {
      const message = (url: string, options?: RedisUrl.UrlOptions) =>
        Either.match(RedisUrl.parse(url, options), {
          onLeft: (e) => {
            assert.instanceOf(e, ImproperlyConfigured)
            return e.message
          },
          onRight: () => "ok"
        })
      assert.strictEqual(message("rediss://h:6380/0"), RedisUrl.E_REDIS_SSL_CERT_REQS_MISSING_INVALID)
      assert.strictEqual(message("redis://h/0?ssl_cert_reqs=required"), RedisUrl.E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH)
      // Still the mismatch when the query has SSL parameters, with redis_backend_use_ssl or without.
      assert.strictEqual(
        message("redis://h/0?ssl_ca_certs=%2Fx", { useSsl: { ssl_cert_reqs: "required" } }),
        RedisUrl.E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH
      )
      assert.strictEqual(message("redis://h/abc"), "invalid literal for int() with base 10: 'abc'")
      assert.strictEqual(message("redis://h//"), "invalid literal for int() with base 10: ''")
      assert.strictEqual(message("redis://h?socket_timeout=abc"), "could not convert string to float: 'abc'")
      assert.strictEqual(message("REDIS://h"), "No module named 'REDIS'")
      assert.strictEqual(message("unix:///tmp/redis.sock"), "No module named 'unix'")
      assert.strictEqual(
        message("socket:///tmp/redis.sock"),
        "Unknown result backend: 'socket'.  Did you spell that correctly? ('is a Python module, not a backend class.')"
      )
      assert.include(message("sentinel://h:26379"), "@effect-celery/sentinel")
      // A password never shows up in an error.
      assert.notInclude(message("redis://u:hunter2@h\u2100x/"), "hunter2")
      assert.notInclude(message("hunter2"), "hunter2")
    })
  )

  it.effect("parse never throws on any string", () =>
    Effect.sync(() => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: "binary" }),
            fc.string().map((s) => "redis://" + s),
            fc.string({ unit: "grapheme" }).map((s) => "rediss://" + s)
          ),
          (url) => {
            const result = RedisUrl.parse(url)
            return Either.isRight(result) || result.left instanceof ImproperlyConfigured
          }
        ),
        { numRuns: 2000 }
      )
    })
  )

  it.effect("generated valid URLs round-trip (fields, and as_uri re-parses to the same place)", () =>
    Effect.sync(() => {
      const hostname = fc.oneof(
        fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,6}){0,2}$/),
        fc.ipV4(),
        fc.ipV6().map((ip) => ip.toLowerCase())
      )
      fc.assert(
        fc.property(
          hostname,
          fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
          fc.integer({ min: 0, max: 15 }),
          fc.option(fc.string({ minLength: 1, unit: "grapheme" }), { nil: undefined }),
          fc.option(fc.string({ minLength: 1, unit: "grapheme" }), { nil: undefined }),
          (host, port, db, user, password) => {
            const auth =
              user !== undefined || password !== undefined
                ? `${user !== undefined ? RedisUrl.quote(user) : ""}${password !== undefined ? ":" + RedisUrl.quote(password) : ""}@`
                : ""
            const hostPart = host.includes(":") ? `[${host}]` : host
            const url = `redis://${auth}${hostPart}${port !== undefined ? `:${port}` : ""}/${db}`
            const parsed = RedisUrl.parse(url)
            if (Either.isLeft(parsed)) throw new Error(`${url}: ${parsed.left.message}`)
            const p = parsed.right
            assert.strictEqual(p.host, host)
            assert.strictEqual(p.port, port ?? 6379)
            assert.strictEqual(p.db, db)
            assert.strictEqual(p.username, user)
            assert.strictEqual(p.password === undefined ? undefined : Redacted.value(p.password), password)
            const expectedAuth =
              user !== undefined || password !== undefined
                ? `${user !== undefined ? RedisUrl.quote(user) : ""}${password !== undefined ? ":**" : ""}@`
                : ""
            assert.strictEqual(
              p.uri,
              `redis://${expectedAuth}${RedisUrl.quote(host)}${port !== undefined ? `:${port}` : ""}/${db}`
            )
            // as_uri quotes the host (an IPv6 host loses its brackets), so re-parse only the rest.
            if (!host.includes(":")) {
              const again = RedisUrl.parse(p.uri)
              if (Either.isLeft(again)) throw new Error(`${p.uri}: ${again.left.message}`)
              assert.strictEqual(again.right.host, host)
              assert.strictEqual(again.right.db, db)
              assert.strictEqual(again.right.username, user)
              assert.strictEqual(
                again.right.password === undefined ? undefined : Redacted.value(again.right.password),
                password === undefined ? undefined : "**"
              )
              assert.strictEqual(again.right.uri, p.uri)
            }
          }
        ),
        { numRuns: 500 }
      )
    })
  )

  it.effect("toConfig maps to a RedisConfig and logs Celery's SSL warnings", () =>
    Effect.gen(function* () {
      const config = yield* RedisUrl.toConfig(
        Redacted.make(
          "rediss://u:pw@h:6380/2?ssl_cert_reqs=optional&ssl_ca_certs=%2Fca.pem&socket_timeout=3&ssl_check_hostname=yes"
        )
      )
      assert.strictEqual(config.host, "h")
      assert.strictEqual(config.port, 6380)
      assert.strictEqual(config.db, 2)
      assert.strictEqual(config.username, "u")
      assert.strictEqual(Redacted.value(config.password!), "pw")
      assert.deepStrictEqual(config.tls, { certReqs: "optional", caFile: "/ca.pem", checkHostname: true })
      assert.strictEqual(config.socketTimeout, 3000)
      assert.strictEqual(config.connectTimeout, 3000)
      assert.strictEqual(config.uri, "rediss://u:**@h:6380/2")
      const socket = yield* RedisUrl.toConfig("redis+socket:///run/r.sock?virtual_host=4&socket_connect_timeout=1.5")
      assert.strictEqual(socket.path, "/run/r.sock")
      assert.strictEqual(socket.db, 4)
      assert.strictEqual(socket.connectTimeout, 1500)
      assert.strictEqual(socket.socketTimeout, 120_000)
      const plain = yield* RedisUrl.toConfig("redis://h/0")
      assert.isUndefined(plain.connectTimeout)
    })
  )
})
