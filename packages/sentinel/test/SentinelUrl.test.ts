import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { SentinelUrl } from "@effect-celery/sentinel"
import { pythonJson } from "../../../test-support/Python.js"

/** What real Celery 5.2.6 makes of each URL (`SentinelBackend(url=…).connparams` and `as_uri()`). */
const CELERY = String.raw`
import json, sys
from celery import Celery
from celery.backends.redis import SentinelBackend
app = Celery()
out = []
for u in json.load(sys.stdin):
    try:
        b = SentinelBackend(app=app, url=u)
        cp = b.connparams
        out.append({"hosts": [{k: h.get(k) for k in ("host", "port", "db", "password", "username")} for h in cp["hosts"]],
                    "db": cp.get("db"), "password": cp.get("password"), "uri": b.as_uri()})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
`

interface CeleryParse {
  readonly hosts?: ReadonlyArray<{
    host: string
    port: number
    db: number
    password: string | null
    username: string | null
  }>
  readonly db?: number
  readonly password?: string | null
  readonly uri?: string
  readonly error?: string
}

const celeryParse = (urls: ReadonlyArray<string>) =>
  pythonJson<ReadonlyArray<CeleryParse>>({ code: CELERY }, { input: urls })

const VECTORS = [
  // The spec's example (§8).
  "sentinel://:pw@s1:26379/2;sentinel://s2:26380/2;sentinel://s3:26381",
  // Celery's own tests (t/unit/backends/test_redis.py, test_SentinelBackend.test_url).
  "sentinel://:test@github.com:123/1;sentinel://:test@github.com:124/1",
  // The comment in celery/backends/redis.py.
  "sentinel://0.0.0.0:26347/3;sentinel://0.0.0.0:26348/3",
  // ACL user in the first chunk (main: copied to the data-node connection).
  "sentinel://user:p%40ss@h1:1/0;sentinel://other:pw2@h2:2/5",
  "sentinel://h1",
  "sentinel://",
  "sentinel://h1:26379//4;sentinel://h2:26380",
  "sentinel://:pw@h1:26379/?virtual_host=3",
  "sentinel://[::1]:26379/1;sentinel://h2:5",
  "sentinel://H1.Example.COM:26379/1?foo=bar&socket_timeout=3;sentinel://h2:26380/7",
  "sentinel://h1:26379/%2F3",
  "sentinel://us%20er:a%3Ab@h1:26379/0",
  // A Unicode decimal digit (ARABIC-INDIC DIGIT THREE) is a digit for Python's int(), as in RedisUrl.
  "sentinel://h1:26379/%D9%A3",
  "sentinel://h1:26379/abc",
  "sentinel://h1:port/1",
  "sentinel://h1:70000/1",
  "sentinel://[::1:26379/1"
]

describe("SentinelUrl", () => {
  it.live("parses like Celery's SentinelBackend (compared with real Celery 5.2.6)", () =>
    Effect.gen(function* () {
      const expected = yield* celeryParse(VECTORS)
      assert.strictEqual(expected.length, VECTORS.length)
      // The last four are errors for Celery too (ValueError from int() / urllib).
      assert.deepStrictEqual(
        expected.map((e) => e.error !== undefined),
        VECTORS.map((_, i) => i >= VECTORS.length - 4)
      )
      for (const [i, url] of VECTORS.entries()) {
        const celery = expected[i]!
        const ours = yield* Effect.either(SentinelUrl.parse(url))
        if (celery.error !== undefined) {
          assert.isTrue(Either.isLeft(ours), `${url}: Celery fails (${celery.error}), we parsed it`)
          if (Either.isLeft(ours)) assert.strictEqual(ours.left._tag, "ImproperlyConfigured")
          continue
        }
        assert.isTrue(Either.isRight(ours), `${url}: ${Either.isLeft(ours) ? ours.left.message : ""}`)
        if (Either.isLeft(ours)) continue
        const parsed = ours.right
        assert.deepStrictEqual(
          parsed.hosts.map((h) => ({
            host: h.host,
            port: h.port,
            db: h.db,
            password: h.password === undefined ? null : Redacted.value(h.password),
            username: h.username ?? null
          })),
          celery.hosts,
          url
        )
        assert.strictEqual(parsed.db, celery.db, url)
        assert.strictEqual(parsed.password === undefined ? null : Redacted.value(parsed.password), celery.password, url)
        // Celery ≥ 5.6.1 (#10013) also takes the username from the first chunk; 5.2.6 dropped it.
        assert.strictEqual(parsed.username ?? null, celery.hosts?.[0]?.username ?? null, url)
        assert.strictEqual(parsed.uri, celery.uri, url)
        assert.strictEqual(SentinelUrl.asUri(url), celery.uri, url)
      }
    })
  )

  it.effect("the spec example, field by field", () =>
    Effect.gen(function* () {
      const url = yield* SentinelUrl.parse("sentinel://:pw@s1:26379/2;sentinel://s2:26380/2;sentinel://s3:26381")
      assert.deepStrictEqual(
        url.hosts.map((h) => [h.host, h.port]),
        [
          ["s1", 26379],
          ["s2", 26380],
          ["s3", 26381]
        ]
      )
      assert.strictEqual(url.db, 2)
      assert.strictEqual(url.password && Redacted.value(url.password), "pw")
      assert.strictEqual(url.uri, "sentinel://:**@s1:26379/2;sentinel://s2:26380/2;sentinel://s3:26381/")
      // The password never shows in logs or errors.
      assert.notInclude(JSON.stringify(url), '"pw"')
    })
  )

  it.effect("redis_password / redis_username act as fallbacks for the first chunk", () =>
    Effect.gen(function* () {
      const fallback = yield* SentinelUrl.parse("sentinel://s1:26379/1", { password: "fromconf", username: "bob" })
      assert.strictEqual(fallback.password && Redacted.value(fallback.password), "fromconf")
      assert.strictEqual(fallback.username, "bob")
      const url = yield* SentinelUrl.parse("sentinel://ann:fromurl@s1:26379/1", {
        password: "fromconf",
        username: "bob"
      })
      assert.strictEqual(url.password && Redacted.value(url.password), "fromurl")
      assert.strictEqual(url.username, "ann")
    })
  )

  it.effect("rejects what cannot work, with the URL sanitized in the message", () =>
    Effect.gen(function* () {
      for (const url of ["redis://h:1/0", "sentinel://:secret@h:1/x", "sentinel://h:1;h2:2", "sentinel://h:1/-1"]) {
        const error = yield* Effect.flip(SentinelUrl.parse(url))
        assert.strictEqual(error._tag, "ImproperlyConfigured", url)
        assert.notInclude(error.message, "secret")
      }
      const notInt = yield* Effect.flip(SentinelUrl.parse("sentinel://:secret@h:1/x"))
      assert.include(notInt.message, "invalid literal for int() with base 10: 'x'")
      assert.include(notInt.message, "sentinel://:**@h:1/x")
    })
  )
})
