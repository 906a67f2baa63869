/**
 * Celery's `sentinel://` result-backend URLs, read as `SentinelBackend._params_from_url` does:
 * `sentinel://[user:pass@]host:port[/db][;sentinel://…]`, one chunk per sentinel. Each chunk is
 * parsed like a redis URL (kombu `url_to_parts`); the database and the data-node credentials come
 * from the FIRST chunk only; per-chunk query parameters are ignored (only host/port are used).
 * `uri` is Celery's `as_uri()`: every chunk sanitized (password `**`, query dropped).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Either from "effect/Either"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import { attempt, maybeSanitizeUrl, pyInt, stripChars, urlToParts } from "@effect-celery/redis/PyUrl"

/** One `;`-separated chunk: a sentinel's address (and what else the chunk said). */
export interface SentinelHost {
  readonly host: string
  readonly port: number
  readonly db: number
  readonly username: string | undefined
  readonly password: Redacted.Redacted | undefined
}

export interface SentinelUrl {
  /** Every chunk, in URL order: the sentinels to ask. */
  readonly hosts: ReadonlyArray<SentinelHost>
  /** The data-node database, from the first chunk. */
  readonly db: number
  /** The data-node ACL username, from the first chunk (Celery ≥ 5.6.1). */
  readonly username: string | undefined
  /** The data-node password, from the first chunk. */
  readonly password: Redacted.Redacted | undefined
  /** Celery's `as_uri()`: each chunk sanitized. */
  readonly uri: string
}

/** Celery's `redis_host` / `redis_port` fallbacks when a chunk omits them. */
export interface Defaults {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** `redis_password`: used when the first chunk has none. */
  readonly password?: Redacted.Redacted | string | undefined
  /** `redis_username`: used when the first chunk has none. */
  readonly username?: string | undefined
}

export const SEPARATOR = ";"

const fail = (url: string, message: string) =>
  new ImproperlyConfigured({ message: `Invalid sentinel URL ${asUri(url)}: ${message}` })

/** Celery's `SentinelBackend.as_uri()` (sanitized). Unparseable chunks are shown as `<invalid>`. */
export const asUri = (url: string): string =>
  url
    .split(SEPARATOR)
    .map((chunk) =>
      Either.getOrElse(
        attempt(() => maybeSanitizeUrl(chunk)),
        () => "<invalid>"
      )
    )
    .join(SEPARATOR)

const parseChunk = (url: string, chunk: string, defaults: Defaults): SentinelHost | ImproperlyConfigured => {
  if (!chunk.includes("://")) return fail(url, `'${chunk}' is not a URL (expected sentinel://host:port)`)
  const read = attempt(() => {
    const parts = urlToParts(chunk)
    // `db = path`, then `(db or 0).strip('/')` and `int(db)` as Celery does.
    const rawDb = stripChars(parts.path ?? "", "/")
    return { parts, db: rawDb === "" ? 0 : pyInt(rawDb) }
  })
  if (Either.isLeft(read)) return fail(url, read.left.message)
  const { db, parts } = read.right
  if (db < 0) return fail(url, `database ${db} is negative`)
  const fallbackPassword =
    defaults.password === undefined || Redacted.isRedacted(defaults.password)
      ? defaults.password
      : Redacted.make(defaults.password)
  return {
    host: parts.host ?? defaults.host ?? "localhost",
    port: parts.port ?? defaults.port ?? 6379,
    db,
    username: parts.username ?? defaults.username,
    password: parts.password !== undefined ? Redacted.make(parts.password) : fallbackPassword
  }
}

/** Parse a Celery `sentinel://` URL; a malformed one fails with `ImproperlyConfigured`. */
export const parse = (url: string, defaults: Defaults = {}): Effect.Effect<SentinelUrl, ImproperlyConfigured> =>
  Effect.suspend(() => {
    const scheme = url.slice(0, url.indexOf("://"))
    if (scheme !== "sentinel") {
      return Effect.fail(new ImproperlyConfigured({ message: `Not a sentinel:// URL: ${asUri(url)}` }))
    }
    const hosts: Array<SentinelHost> = []
    for (const chunk of url.split(SEPARATOR)) {
      const host = parseChunk(url, chunk, defaults)
      if (host instanceof ImproperlyConfigured) return Effect.fail(host)
      hosts.push(host)
    }
    const first = hosts[0]
    if (first === undefined) return Effect.fail(fail(url, "no sentinel"))
    return Effect.succeed({ hosts, db: first.db, username: first.username, password: first.password, uri: asUri(url) })
  })
