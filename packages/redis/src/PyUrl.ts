/**
 * The pieces of CPython 3.11's `int()` / `float()` / `urllib.parse` and of kombu's `url_to_parts` /
 * `as_url(sanitize=True)` that decide how a Celery backend URL is read and how `as_uri()` prints it.
 * Shared by `RedisUrl` (`redis://`, `rediss://`, `redis+socket://`) and `@effect-celery/sentinel`'s
 * `SentinelUrl`, so both read a URL chunk the same way.
 *
 * Like their Python originals, the parsers throw where Python raises: a `PyError` carrying Python's
 * message. Use {@link attempt} to get an `Either` instead; the URL modules built on these never throw.
 */
import * as Either from "effect/Either"
import * as Net from "node:net"
import { reprString } from "@effect-celery/core/PyJson"
/** A Python `ValueError`/`TypeError` raised while parsing: carried as its message. */
export class PyError extends Error {}

/** Throw a `PyError` (Python's `raise ValueError(message)`). */
export const raise = (message: string): never => {
  throw new PyError(message)
}

/** Run a parser from this module: its `PyError` as a `Left`; anything else is rethrown as a defect would be. */
export const attempt = <A>(f: () => A): Either.Either<A, PyError> => {
  try {
    return Either.right(f())
  } catch (cause) {
    if (cause instanceof PyError) return Either.left(cause)
    throw cause
  }
}

// Python's str.isspace() set (str.strip() with no argument strips these).
const PY_SPACE =
  "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

/** Python `s.strip(chars)`. */
export const stripChars = (s: string, chars: string): string => {
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
const C0_OR_SPACE =
  "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\t\n\u000b\u000c\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f "

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

/** What kombu's `url_to_parts` returns (components unquoted; empty ones are `undefined`). */
export interface UrlParts {
  readonly scheme: string
  readonly host: string | undefined
  readonly port: number | undefined
  readonly username: string | undefined
  readonly password: string | undefined
  /** The path without its first `/`. */
  readonly path: string | undefined
  /** `dict(parse_qsl(query))`. */
  readonly query: Map<string, string>
}

/** kombu `url_to_parts`: the URL re-parsed with HTTP semantics, components unquoted. */
export const urlToParts = (url: string): UrlParts => {
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
export const sanitize = (parts: UrlParts): string => {
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

/** kombu `maybe_sanitize_url` + `as_uri()`: a URL (containing `://`) sanitized, anything else kept as is. */
export const maybeSanitizeUrl = (url: string): string => (url.includes("://") ? sanitize(urlToParts(url)) : url)
