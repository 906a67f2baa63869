/**
 * Celery 5.2.6 result-backend URLs, read exactly as `celery.app.backends.by_url` and
 * `RedisBackend.__init__` / `_params_from_url` do (spec §8), on top of a port of the Python 3.11
 * `urllib.parse` pieces kombu's `url_to_parts` relies on:
 *
 * - `redis://` and `rediss://` (TLS); `redis+socket:///path` (a unix socket: `by_url` splits on `+`
 *   so the backend sees `socket:///path`); `redis+<x>://` is read as TCP, as Celery does. A bare
 *   `socket://`, `unix://` and any other scheme fail with Celery's message; the scheme is
 *   case-sensitive. `sentinel://` belongs to `@effect-celery/sentinel`.
 * - user / password / host / path are percent-decoded (`unquote`), the host is lower-cased, the
 *   database is the path (`//1` → 1, `/%2F3` → 3, `//` → `int('')` error); `virtual_host` only
 *   counts for sockets. Query parameters go through redis-py 4.3.4's parsers (`socket_timeout`
 *   float, `socket_keepalive` to_bool, `max_connections` int, …); unknown keys are kept, the last
 *   value wins, and every query key overrides the defaults. Invalid values fail with Python's own
 *   message (`could not convert string to float: 'abc'`).
 * - SSL: a `rediss://` URL (or `redis_backend_use_ssl`) needs `ssl_cert_reqs` in
 *   CERT_REQUIRED|CERT_OPTIONAL|CERT_NONE|required|optional|none (or 2/1/0); SSL parameters with
 *   `redis://` are an error (5.2.6 also counts `redis_backend_use_ssl`); OPTIONAL / NONE carry
 *   Celery's warnings, logged by `toConfig`.
 *
 * `parse` never throws: every failure is an `ImproperlyConfigured` whose message is Python's.
 * Options the client cannot use (`max_connections`, `retry_on_timeout`, `retry_on_error`, unknown
 * keys) are kept in `connparams` for inspection and otherwise ignored: one multiplexed
 * connection needs no pool, and retries belong to the caller's retry policy.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import { reprString } from "@effect-celery/core/PyJson"
import type { CertReqs, RedisConfig } from "./RedisConfig.js"
import { W_REDIS_SSL_CERT_NONE, W_REDIS_SSL_CERT_OPTIONAL } from "./RedisConfig.js"

export { W_REDIS_SSL_CERT_NONE, W_REDIS_SSL_CERT_OPTIONAL }

export const E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH =
  "\nSSL connection parameters have been provided but the specified URL scheme is redis://. A Redis SSL connection URL should use the scheme rediss://.\n"
export const E_REDIS_SSL_CERT_REQS_MISSING_INVALID =
  "\nA rediss:// URL must have parameter ssl_cert_reqs and this must be set to CERT_REQUIRED, CERT_OPTIONAL, or CERT_NONE\n"

// ---------------------------------------------------------------------------------------------
// Python helpers (CPython 3.11 semantics)
// ---------------------------------------------------------------------------------------------

/** A Python `ValueError`/`TypeError` raised while parsing: carried as its message. */
class PyError extends Error {}

const raise = (message: string): never => {
  throw new PyError(message)
}

// Python's str.isspace() set (str.strip() with no argument strips these).
const PY_SPACE = "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

const stripChars = (s: string, chars: string): string => {
  let start = 0
  let end = s.length
  while (start < end && chars.includes(s[start]!)) start++
  while (end > start && chars.includes(s[end - 1]!)) end--
  return s.slice(start, end)
}

const lstripChars = (s: string, chars: string): string => {
  let start = 0
  while (start < s.length && chars.includes(s[start]!)) start++
  return s.slice(start)
}

const ND = /^\p{Nd}$/u

/** The value of a Unicode decimal digit (digits come in blocks of ten starting at zero). */
const digitValue = (ch: string): number | undefined => {
  const c = ch.codePointAt(0)!
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (!ND.test(ch)) return undefined
  let k = 0
  while (k < 10 && ND.test(String.fromCodePoint(c - k - 1))) k++
  return k % 10
}

/** Python `int(s)` for a str (base 10): whitespace, sign, `_` between digits, Unicode digits. */
export const pyInt = (s: string): number => {
  const fail = () => raise(`invalid literal for int() with base 10: ${reprString(s)}`)
  const t = stripChars(s, PY_SPACE)
  let i = 0
  let sign = 1
  if (t[0] === "+" || t[0] === "-") {
    sign = t[0] === "-" ? -1 : 1
    i = 1
  }
  const body = Array.from(t.slice(i))
  if (body.length === 0) return fail()
  let value = 0
  let lastUnderscore = true // no leading underscore
  for (const ch of body) {
    if (ch === "_") {
      if (lastUnderscore) return fail()
      lastUnderscore = true
      continue
    }
    const d = digitValue(ch)
    if (d === undefined) return fail()
    value = value * 10 + d
    lastUnderscore = false
  }
  if (lastUnderscore) return fail()
  return sign * value
}

const FLOAT_RE = /^[+-]?(?:(?:\d(?:_?\d)*)(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/
const FLOAT_SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i

/** Python `float(s)` for a str. */
export const pyFloat = (s: string): number => {
  const t = Array.from(stripChars(s, PY_SPACE))
    .map((ch) => {
      const d = ch >= "0" && ch <= "9" ? undefined : digitValue(ch)
      return d === undefined ? ch : String(d)
    })
    .join("")
  if (FLOAT_SPECIAL.test(t)) {
    const neg = t.startsWith("-")
    return t.toLowerCase().includes("nan") ? NaN : neg ? -Infinity : Infinity
  }
  if (!FLOAT_RE.test(t)) return raise(`could not convert string to float: ${reprString(s)}`)
  return Number(t.replace(/_/g, ""))
}

const FALSE_STRINGS: ReadonlySet<string> = new Set(["0", "F", "FALSE", "N", "NO"])

/** redis-py's `to_bool`. */
export const toBool = (value: string): boolean | null =>
  value === "" ? null : FALSE_STRINGS.has(value.toUpperCase()) ? false : true

const HEX = /^[0-9A-Fa-f]{2}$/
const utf8 = new TextDecoder("utf-8", { fatal: false })
// eslint-disable-next-line no-control-regex -- ASCII runs are what Python's unquote splits on
const ASCII_RUNS = /([\u0000-\u007f]+)/

/** Python `urllib.parse.unquote` (UTF-8, errors='replace'). */
export const unquote = (s: string): string => {
  if (!s.includes("%")) return s
  return s
    .split(ASCII_RUNS)
    .map((part, i) => {
      if (i % 2 === 0 || !part.includes("%")) return part
      const bytes: Array<number> = []
      for (let j = 0; j < part.length; j++) {
        const pair = part.slice(j + 1, j + 3)
        if (part[j] === "%" && HEX.test(pair)) {
          bytes.push(parseInt(pair, 16))
          j += 2
        } else {
          bytes.push(part.charCodeAt(j))
        }
      }
      return utf8.decode(Uint8Array.from(bytes))
    })
    .join("")
}

const ALWAYS_SAFE = /^[A-Za-z0-9_.\-~]$/
const utf8Encoder = new TextEncoder()

/** Python `quote(s, safe='')` (kombu's `safequote`). */
export const quote = (s: string): string => {
  let out = ""
  for (const ch of s) {
    if (ALWAYS_SAFE.test(ch)) {
      out += ch
      continue
    }
    // Lone surrogates cannot come from Python text; encode them as U+FFFD like a lossy encoder.
    for (const b of utf8Encoder.encode(ch)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0")
  }
  return out
}

/** `dict(parse_qsl(qs))`: `&`-separated, blank values dropped, `+` → space, last value wins. */
export const parseQs = (qs: string): Map<string, string> => {
  const out = new Map<string, string>()
  for (const field of qs.split("&")) {
    if (field === "") continue
    const eq = field.indexOf("=")
    if (eq === -1) continue
    const value = field.slice(eq + 1)
    if (value.length === 0) continue
    out.set(unquote(field.slice(0, eq).replace(/\+/g, " ")), unquote(value.replace(/\+/g, " ")))
  }
  return out
}

const SCHEME_CHARS = /^[A-Za-z0-9+\-.]*$/
// The WHATWG C0-control-or-space set.
const C0_OR_SPACE = "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\t\n\u000b\u000c\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f "

interface Split {
  readonly scheme: string
  readonly netloc: string
  readonly path: string
  readonly query: string
}

const checkBracketedHost = (hostname: string): void => {
  if (hostname.startsWith("v")) {
    if (!/^v[a-fA-F0-9]+\..+$/s.test(hostname)) raise("IPvFuture address is invalid")
    return
  }
  const kind = Net.isIP(hostname)
  if (kind === 0) raise(`${reprString(hostname)} does not appear to be an IPv4 or IPv6 address`)
  if (kind === 4) raise("An IPv4 address cannot be in brackets")
}

const checkBracketedNetloc = (netloc: string): void => {
  const hostAndPort = rpartition(netloc, "@")[2]
  const [before, haveOpen, bracketed] = partition(hostAndPort, "[")
  let hostname: string
  if (haveOpen) {
    if (before) raise("Invalid IPv6 URL")
    const [h, , port] = partition(bracketed, "]")
    hostname = h
    if (port && !port.startsWith(":")) raise("Invalid IPv6 URL")
  } else {
    hostname = partition(hostAndPort, ":")[0]
  }
  checkBracketedHost(hostname)
}

const checkNetloc = (netloc: string): void => {
  // eslint-disable-next-line no-control-regex -- "is ASCII"
  if (netloc === "" || /^[\u0000-\u007f]*$/.test(netloc)) return
  const n = netloc.replace(/[@:#?]/g, "")
  const n2 = n.normalize("NFKC")
  if (n === n2) return
  for (const c of "/?#@:") {
    if (n2.includes(c)) raise(`netloc '${maskNetloc(netloc)}' contains invalid characters under NFKC normalization`)
  }
}

/** The netloc with any password replaced by `**` (Python would print it; we do not). */
const maskNetloc = (netloc: string): string => {
  const [userinfo, haveInfo, hostinfo] = rpartition(netloc, "@")
  if (!haveInfo) return netloc
  const [user, havePassword] = partition(userinfo, ":")
  return havePassword ? `${user}:**@${hostinfo}` : netloc
}

const partition = (s: string, sep: string): readonly [string, boolean, string] => {
  const i = s.indexOf(sep)
  return i === -1 ? [s, false, ""] : [s.slice(0, i), true, s.slice(i + sep.length)]
}

const rpartition = (s: string, sep: string): readonly [string, boolean, string] => {
  const i = s.lastIndexOf(sep)
  return i === -1 ? ["", false, s] : [s.slice(0, i), true, s.slice(i + sep.length)]
}

/** `urllib.parse.urlparse` (scheme, netloc, path without `;params`, query). */
const urlparse = (input: string): Split => {
  let url = lstripChars(input, C0_OR_SPACE).replace(/[\t\r\n]/g, "")
  let scheme = ""
  let netloc = ""
  let query = ""
  const colon = url.indexOf(":")
  if (colon > 0 && /^[A-Za-z]/.test(url) && SCHEME_CHARS.test(url.slice(0, colon))) {
    scheme = url.slice(0, colon).toLowerCase()
    url = url.slice(colon + 1)
  }
  if (url.startsWith("//")) {
    let delim = url.length
    for (const c of "/?#") {
      const w = url.indexOf(c, 2)
      if (w >= 0) delim = Math.min(delim, w)
    }
    netloc = url.slice(2, delim)
    url = url.slice(delim)
    const open = netloc.includes("[")
    const close = netloc.includes("]")
    if (open !== close) raise("Invalid IPv6 URL")
    if (open && close) checkBracketedNetloc(netloc)
  }
  const hash = url.indexOf("#")
  if (hash !== -1) url = url.slice(0, hash)
  const q = url.indexOf("?")
  if (q !== -1) {
    query = url.slice(q + 1)
    url = url.slice(0, q)
  }
  checkNetloc(netloc)
  // `http` uses ;params: the path ends at the first ';' of its last segment.
  if (url.includes(";")) {
    const i = url.includes("/") ? url.indexOf(";", url.lastIndexOf("/")) : url.indexOf(";")
    if (i >= 0) url = url.slice(0, i)
  }
  return { scheme, netloc, path: url, query }
}

interface UrlParts {
  readonly scheme: string
  readonly host: string | undefined
  readonly port: number | undefined
  readonly username: string | undefined
  readonly password: string | undefined
  readonly path: string | undefined
  readonly query: Map<string, string>
}

/** kombu `url_to_parts`: the URL re-parsed with HTTP semantics, components unquoted. */
const urlToParts = (url: string): UrlParts => {
  const scheme = urlparse(url).scheme
  const parts = urlparse("http://" + url.slice(scheme.length + 3))
  const [userinfo, haveInfo] = rpartition(parts.netloc, "@")
  let username: string | undefined
  let password: string | undefined
  if (haveInfo) {
    const [u, havePassword, p] = partition(userinfo, ":")
    username = u
    password = havePassword ? p : undefined
  }
  const hostinfo = rpartition(parts.netloc, "@")[2]
  const [, haveOpen, bracketed] = partition(hostinfo, "[")
  let hostname: string
  let portText: string
  if (haveOpen) {
    const [h, , rest] = partition(bracketed, "]")
    hostname = h
    portText = partition(rest, ":")[2]
  } else {
    const [h, , p] = partition(hostinfo, ":")
    hostname = h
    portText = p
  }
  let port: number | undefined
  if (portText !== "") {
    if (!/^[0-9]+$/.test(portText)) raise(`Port could not be cast to integer value as ${reprString(portText)}`)
    port = Number(portText)
    if (port > 65535) raise("Port out of range 0-65535")
  }
  let host: string | undefined
  if (hostname !== "") {
    const [h, pct, zone] = partition(hostname, "%")
    host = h.toLowerCase() + (pct ? "%" + zone : "")
  }
  const path = parts.path.startsWith("/") ? parts.path.slice(1) : parts.path
  return {
    scheme,
    host: orNone(unquote(host ?? "")),
    port,
    username: orNone(unquote(username ?? "")),
    password: orNone(unquote(password ?? "")),
    path: orNone(unquote(path)),
    query: parseQs(parts.query)
  }
}

const orNone = (s: string): string | undefined => (s === "" ? undefined : s)

/** kombu `as_url(..., sanitize=True)` + Celery's `as_uri()` trailing-slash rule. */
const sanitize = (parts: UrlParts): string => {
  let out = `${parts.scheme}://`
  if (parts.username !== undefined || parts.password !== undefined) {
    if (parts.username !== undefined) out += quote(parts.username)
    if (parts.password !== undefined) out += ":**"
    out += "@"
  }
  if (parts.host !== undefined) out += quote(parts.host)
  if (parts.port !== undefined && parts.port !== 0) out += `:${parts.port}`
  out += "/"
  if (parts.path !== undefined) out += parts.path
  return out.endsWith(":///") ? out.slice(0, -1) : out
}

// ---------------------------------------------------------------------------------------------
// Celery
// ---------------------------------------------------------------------------------------------

/** A Python value in `connparams` (passwords stay redacted). */
export type PyValue = string | number | boolean | null | ReadonlyArray<string> | Redacted.Redacted

export type ConnectionClass = "Connection" | "SSLConnection" | "UnixDomainSocketConnection"

export interface ParsedUrl {
  /** The scheme the backend saw: "redis", "rediss", "socket" (from `redis+socket`), or another `redis+x`. */
  readonly scheme: string
  readonly connectionClass: ConnectionClass
  /** TCP host (undefined for a unix socket). */
  readonly host: string | undefined
  readonly port: number | undefined
  /** Unix socket path (`redis+socket://`). */
  readonly path: string | undefined
  readonly db: number
  readonly username: string | undefined
  readonly password: Redacted.Redacted | undefined
  /** `ssl_cert_reqs`, validated, when the connection is TLS. */
  readonly certReqs: CertReqs | undefined
  /** Celery's warnings to log (CERT_OPTIONAL / CERT_NONE). */
  readonly warnings: ReadonlyArray<string>
  /** Every connection parameter as Celery passes it to redis-py (without `connection_class`). */
  readonly connparams: Readonly<Record<string, PyValue>>
  /** Celery's `as_uri()`: password masked, query dropped. */
  readonly uri: string
}

/** Celery settings that are not in the URL (`redis_*`), used as `_params_from_url` defaults. */
export interface UrlOptions {
  /** `redis_backend_use_ssl`: merged verbatim (`ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`, …). */
  readonly useSsl?: Readonly<Record<string, unknown>> | undefined
  /** `redis_host` (default "localhost"). */
  readonly host?: string | undefined
  /** `redis_port` (default 6379). */
  readonly port?: number | undefined
  /** `redis_db`: only counts for sockets without `virtual_host` (a TCP URL's path always wins). */
  readonly db?: number | undefined
  /** `redis_username`. */
  readonly username?: string | undefined
  /** `redis_password`. */
  readonly password?: Redacted.Redacted | string | undefined
  /** `redis_socket_timeout` in seconds (default 120; `null` = none). */
  readonly socketTimeout?: number | null | undefined
  /** `redis_socket_connect_timeout` in seconds. */
  readonly socketConnectTimeout?: number | null | undefined
  /** `redis_socket_keepalive`. */
  readonly socketKeepalive?: boolean | undefined
  /** `redis_retry_on_timeout` (kept in connparams; retries belong to the retry policy). */
  readonly retryOnTimeout?: boolean | undefined
  /** `redis_max_connections` (kept in connparams; one multiplexed connection needs no pool). */
  readonly maxConnections?: number | undefined
  /** `redis_backend_health_check_interval` in seconds: PING this often on an idle connection. */
  readonly healthCheckInterval?: number | undefined
  /** `redis_client_name` (Celery ≥ 5.6): `CLIENT SETNAME`. */
  readonly clientName?: string | undefined
}

const SSL_KEYS = ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"] as const

type Parser = (value: string) => PyValue
const QUERY_PARSERS: Readonly<Record<string, Parser>> = {
  db: pyInt,
  socket_timeout: pyFloat,
  socket_connect_timeout: pyFloat,
  socket_keepalive: toBool,
  retry_on_timeout: toBool,
  retry_on_error: (value) => Array.from(value),
  max_connections: pyInt,
  health_check_interval: pyInt,
  ssl_check_hostname: toBool
}

const CERT_REQS: Readonly<Record<string, CertReqs>> = {
  CERT_REQUIRED: "required",
  CERT_OPTIONAL: "optional",
  CERT_NONE: "none",
  required: "required",
  optional: "optional",
  none: "none"
}
const CERT_REQS_INT: ReadonlyArray<CertReqs> = ["none", "optional", "required"]

const UNKNOWN_BACKEND = (name: string, detail: string) =>
  `Unknown result backend: ${reprString(name)}.  Did you spell that correctly? (${reprString(detail)})`

// Celery's backend aliases that are not Redis: valid for Celery, not for this client.
const OTHER_BACKENDS: ReadonlySet<string> = new Set([
  "amqp", "rpc", "cache", "mongodb", "db", "database", "elasticsearch", "cassandra", "couchbase", "couchdb",
  "cosmosdbsql", "riak", "file", "disabled", "consul", "dynamodb", "azureblockblob", "arangodb", "s3"
])

/** `by_url`: the backend name and the URL the backend sees. */
const byUrl = (url: string): string => {
  const sep = url.indexOf("://")
  // Never echo the URL: it may carry a password.
  if (sep === -1) return raise("Not a result backend URL: no '://' in it")
  const scheme = url.slice(0, sep)
  let backend = scheme
  let rest = url
  if (scheme.includes("+")) {
    const plus = url.indexOf("+")
    backend = url.slice(0, plus)
    rest = url.slice(plus + 1)
  }
  if (backend === "redis" || backend === "rediss") return rest
  if (backend === "sentinel") return raise("sentinel:// URLs are read by @effect-celery/sentinel (SentinelUrl)")
  if (backend === "socket") return raise(UNKNOWN_BACKEND(backend, "is a Python module, not a backend class."))
  if (OTHER_BACKENDS.has(backend)) return raise(`Result backend ${reprString(backend)} is not a Redis backend`)
  return raise(`No module named ${reprString(backend)}`)
}

const password = (value: Redacted.Redacted | string | undefined): Redacted.Redacted | undefined =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? value : Redacted.make(value)

const parseUnsafe = (url: string, options: UrlOptions): ParsedUrl => {
  const backendUrl = byUrl(url)
  // RedisBackend.__init__: the defaults.
  const conn = new Map<string, PyValue | undefined>()
  conn.set("host", options.host || "localhost")
  conn.set("port", options.port || 6379)
  conn.set("db", options.db || 0)
  conn.set("password", password(options.password) ?? null)
  conn.set("max_connections", options.maxConnections || null)
  conn.set("socket_timeout", options.socketTimeout === undefined ? 120 : options.socketTimeout)
  conn.set("retry_on_timeout", options.retryOnTimeout || false)
  conn.set("socket_connect_timeout", options.socketConnectTimeout ?? null)
  if (options.username) conn.set("username", options.username)
  if (options.healthCheckInterval) conn.set("health_check_interval", options.healthCheckInterval)
  if (options.socketKeepalive) conn.set("socket_keepalive", options.socketKeepalive)
  if (options.clientName !== undefined) conn.set("client_name", options.clientName)
  let connectionClass: ConnectionClass = "Connection"
  if (options.useSsl !== undefined && Object.keys(options.useSsl).length > 0) {
    for (const [k, v] of Object.entries(options.useSsl)) conn.set(k, toPyValue(v))
    connectionClass = "SSLConnection"
  }

  // _params_from_url
  const parts = urlToParts(backendUrl)
  const query = parts.query
  const virtualHost = query.get("virtual_host")
  query.delete("virtual_host")
  if (parts.host !== undefined) conn.set("host", parts.host)
  if (parts.port !== undefined) conn.set("port", parts.port)
  if (parts.username !== undefined) conn.set("username", parts.username)
  if (parts.password !== undefined) conn.set("password", Redacted.make(parts.password))
  if (virtualHost !== undefined) conn.set("db", virtualHost)
  if (parts.scheme === "socket") {
    if (parts.path === undefined) raise(`can only concatenate str (not "NoneType") to str`)
    connectionClass = "UnixDomainSocketConnection"
    conn.set("path", "/" + parts.path)
    conn.delete("host")
    conn.delete("port")
    conn.delete("socket_connect_timeout")
  } else {
    conn.set("db", parts.path ?? null)
  }
  if (parts.scheme === "redis") {
    if (SSL_KEYS.some((k) => conn.has(k) || query.has(k))) raise(E_REDIS_SSL_PARAMS_AND_SCHEME_MISMATCH)
  }
  if (parts.scheme === "rediss") {
    connectionClass = "SSLConnection"
    for (const k of SSL_KEYS) {
      const v = query.get(k)
      query.delete(k)
      if (v) conn.set(k, unquote(v))
    }
  }
  const rawDb = conn.get("db")
  const db = rawDb === undefined || rawDb === null || rawDb === 0 || rawDb === "" || rawDb === false ? 0 : rawDb
  conn.set("db", typeof db === "string" ? pyInt(stripChars(db, "/")) : typeof db === "number" ? Math.trunc(db) : pyInt(textOf(db)))
  for (const [k, v] of query) {
    const parser = QUERY_PARSERS[k]
    conn.set(k, parser !== undefined ? parser(v) : k === "password" ? Redacted.make(v) : v)
  }

  // RedisBackend.__init__: ssl_cert_reqs validation for SSL connections.
  let certReqs: CertReqs | undefined
  const warnings: Array<string> = []
  if (connectionClass === "SSLConnection") {
    const raw = conn.has("ssl_cert_reqs") ? conn.get("ssl_cert_reqs") : "MISSING"
    certReqs = typeof raw === "string"
      ? CERT_REQS[raw]
      : typeof raw === "number" || typeof raw === "boolean"
      ? CERT_REQS_INT[Number(raw)]
      : undefined
    if (certReqs === undefined) raise(E_REDIS_SSL_CERT_REQS_MISSING_INVALID)
    if (certReqs === "optional") warnings.push(W_REDIS_SSL_CERT_OPTIONAL)
    if (certReqs === "none") warnings.push(W_REDIS_SSL_CERT_NONE)
    conn.set("ssl_cert_reqs", certReqs === "required" ? 2 : certReqs === "optional" ? 1 : 0)
  }

  const connparams: Record<string, PyValue> = {}
  for (const [k, v] of conn) if (v !== undefined) connparams[k] = v
  const host = conn.get("host")
  const port = conn.get("port")
  const user = conn.get("username")
  const pw = conn.get("password")
  const path = conn.get("path")
  return {
    scheme: parts.scheme,
    connectionClass,
    host: connectionClass === "UnixDomainSocketConnection" ? undefined : typeof host === "string" ? host : host === undefined ? "localhost" : textOf(host),
    port: connectionClass === "UnixDomainSocketConnection" ? undefined : typeof port === "number" ? port : port === undefined ? 6379 : pyInt(textOf(port)),
    path: connectionClass === "UnixDomainSocketConnection" && typeof path === "string" ? path : undefined,
    db: conn.get("db") as number,
    username: typeof user === "string" && user !== "" ? user : undefined,
    password: Redacted.isRedacted(pw) ? pw : typeof pw === "string" ? Redacted.make(pw) : undefined,
    certReqs,
    warnings,
    connparams,
    uri: sanitize(urlToParts(backendUrl))
  }
}

/** A value as Python's `str()` would show it, never revealing a secret. */
const textOf = (v: PyValue): string =>
  v === null ? "None" : Redacted.isRedacted(v) ? "**" : typeof v === "boolean" ? (v ? "True" : "False") : Array.isArray(v) ? `[${v.map(reprString).join(", ")}]` : String(v)

const toPyValue = (v: unknown): PyValue | undefined => {
  if (v === undefined) return undefined
  if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v
  if (Redacted.isRedacted(v)) return Redacted.make(String(Redacted.value(v)))
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)))
  return JSON.stringify(v)
}

/**
 * Parse a Celery result-backend URL as Celery 5.2.6 does (never throws). `options` are the
 * `redis_*` settings and `redis_backend_use_ssl`.
 */
export const parse = (url: string, options: UrlOptions = {}): Either.Either<ParsedUrl, ImproperlyConfigured> => {
  try {
    return Either.right(parseUnsafe(url, options))
  } catch (cause) {
    if (cause instanceof PyError) return Either.left(new ImproperlyConfigured({ message: cause.message }))
    return Either.left(new ImproperlyConfigured({ message: `Invalid result backend URL: ${String(cause)}`, cause }))
  }
}

/** Celery's `as_uri()` of a parsed URL: password masked, query dropped. */
export const asUri = (parsed: ParsedUrl): string => parsed.uri

/** Celery's `as_uri()` of a URL string (kombu `maybe_sanitize_url`); undefined if it cannot be parsed. */
export const sanitizeUrl = (url: string): string | undefined => {
  try {
    return sanitize(urlToParts(url))
  } catch {
    return undefined
  }
}

const seconds = (v: PyValue | undefined): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v > 0 ? v * 1000 : undefined

const boolOf = (v: PyValue | undefined): boolean | undefined =>
  v === undefined || v === null ? undefined : typeof v === "string" ? toBool(v) ?? undefined : typeof v === "boolean" ? v : Boolean(v)

const stringOf = (v: PyValue | undefined): string | undefined => (typeof v === "string" && v !== "" ? v : undefined)

/**
 * The `RedisConfig` a parsed URL stands for. Timeouts: `socket_timeout` bounds every command (0 or
 * none = unbounded); the connect bound is `socket_connect_timeout`, else a `socket_timeout` that
 * was set explicitly (URL or option), as redis-py does, else 5 s (redis-py would wait the default
 * 120 s `socket_timeout`: failing fast lets the retry policy work). `health_check_interval` becomes
 * a periodic PING.
 */
export const configOf = (parsed: ParsedUrl, options: UrlOptions = {}): RedisConfig => {
  const p = parsed.connparams
  const socketTimeout = seconds(p["socket_timeout"])
  const explicitSocketTimeout = "socket_timeout" in p && (options.socketTimeout !== undefined || p["socket_timeout"] !== 120)
  const connectTimeout = seconds(p["socket_connect_timeout"]) ?? (explicitSocketTimeout ? socketTimeout : undefined)
  const keepalive = boolOf(p["socket_keepalive"])
  const clientName = stringOf(p["client_name"])
  const healthCheck = seconds(p["health_check_interval"])
  const tls = parsed.connectionClass === "SSLConnection"
    ? {
      certReqs: parsed.certReqs ?? "required",
      ...(stringOf(p["ssl_ca_certs"]) !== undefined ? { caFile: stringOf(p["ssl_ca_certs"]) } : {}),
      ...(stringOf(p["ssl_certfile"]) !== undefined ? { certFile: stringOf(p["ssl_certfile"]) } : {}),
      ...(stringOf(p["ssl_keyfile"]) !== undefined ? { keyFile: stringOf(p["ssl_keyfile"]) } : {}),
      ...(boolOf(p["ssl_check_hostname"]) !== undefined ? { checkHostname: boolOf(p["ssl_check_hostname"]) } : {})
    }
    : undefined
  return {
    ...(parsed.path !== undefined ? { path: parsed.path } : { host: parsed.host, port: parsed.port }),
    db: parsed.db,
    ...(parsed.username !== undefined ? { username: parsed.username } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    socketTimeout: socketTimeout !== undefined ? socketTimeout : null,
    ...(connectTimeout !== undefined ? { connectTimeout } : {}),
    ...(keepalive !== undefined ? { keepAlive: keepalive } : {}),
    ...(clientName !== undefined ? { clientName } : {}),
    ...(healthCheck !== undefined ? { healthCheckInterval: healthCheck } : {}),
    uri: parsed.uri
  }
}

/**
 * Parse and build the `RedisConfig`. Celery's SSL warnings (`parsed.warnings`) are logged once
 * when the TLS options are built (`RedisConfig.clientOptions`), so not here.
 */
export const toConfig = (
  url: string | Redacted.Redacted,
  options: UrlOptions = {}
): Effect.Effect<RedisConfig, ImproperlyConfigured> =>
  Effect.map(parse(Redacted.isRedacted(url) ? Redacted.value(url) : url, options), (parsed) => configOf(parsed, options))
