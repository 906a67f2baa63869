/**
 * The parts of Python's `urllib.parse` and kombu's `url_to_parts` / `as_url` that decide how a
 * Celery result-backend URL chunk is read and how `as_uri()` prints it.
 */

/** Python `urllib.parse.unquote`: `%XX` runs decoded as UTF-8 (bad bytes → U+FFFD), others kept. */
export const unquote = (s: string): string => {
  if (!s.includes("%")) return s
  const decoder = new TextDecoder("utf-8", { fatal: false })
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3)
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16)
    return decoder.decode(bytes)
  })
}

/** Python `quote(s, safe='')`: everything but `A-Za-z0-9_.-~` percent-encoded as UTF-8. */
export const quote = (s: string): string => {
  let out = ""
  for (const byte of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_.\-~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/** What kombu's `url_to_parts` returns (after `unquote`; empty strings are `undefined`). */
export interface UrlParts {
  readonly scheme: string
  readonly hostname: string | undefined
  readonly port: number | undefined
  readonly username: string | undefined
  readonly password: string | undefined
  /** The path without its first `/`. */
  readonly path: string | undefined
  readonly query: string
}

export class UrlError {
  readonly _tag = "UrlError"
  constructor(readonly message: string) {}
}

const SCHEME_CHARS = /^[A-Za-z][A-Za-z0-9+\-.]*$/

/** Python `urlsplit(url).scheme` (lowercased; empty when the prefix is not a valid scheme). */
const schemeOf = (url: string): string => {
  const i = url.indexOf(":")
  if (i <= 0) return ""
  const candidate = url.slice(0, i)
  return SCHEME_CHARS.test(candidate) ? candidate.toLowerCase() : ""
}

/**
 * kombu `url_to_parts(url)`: the scheme, then the rest parsed with `http://` semantics.
 * Fails like Python's `urlsplit` / `.port` do (invalid IPv6 literal, non-numeric or out-of-range port).
 */
export const urlToParts = (url: string): UrlParts | UrlError => {
  const scheme = schemeOf(url)
  // Python 3.11 removes tabs and newlines anywhere and strips leading C0 controls and spaces.
  // eslint-disable-next-line no-control-regex
  const rest = url.slice(scheme.length + 3).replace(/[\t\r\n]/g, "").replace(/^[\u0000-\u0020]+/, "")
  let netloc = ""
  let tail = rest
  const end = rest.search(/[/?#]/)
  netloc = end === -1 ? rest : rest.slice(0, end)
  tail = end === -1 ? "" : rest.slice(end)
  if ((netloc.includes("[") && !netloc.includes("]")) || (netloc.includes("]") && !netloc.includes("["))) {
    return new UrlError("Invalid IPv6 URL")
  }
  const hash = tail.indexOf("#")
  if (hash !== -1) tail = tail.slice(0, hash)
  const qmark = tail.indexOf("?")
  const query = qmark === -1 ? "" : tail.slice(qmark + 1)
  const rawPath = qmark === -1 ? tail : tail.slice(0, qmark)

  const at = netloc.lastIndexOf("@")
  const userinfo = at === -1 ? undefined : netloc.slice(0, at)
  const hostinfo = at === -1 ? netloc : netloc.slice(at + 1)
  let rawUser: string | undefined
  let rawPassword: string | undefined
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":")
    rawUser = colon === -1 ? userinfo : userinfo.slice(0, colon)
    rawPassword = colon === -1 ? undefined : userinfo.slice(colon + 1)
  }
  let rawHost: string
  let rawPort: string
  const open = hostinfo.indexOf("[")
  if (open !== -1) {
    const bracketed = hostinfo.slice(open + 1)
    const close = bracketed.indexOf("]")
    rawHost = close === -1 ? bracketed : bracketed.slice(0, close)
    const after = close === -1 ? "" : bracketed.slice(close + 1)
    const colon = after.indexOf(":")
    rawPort = colon === -1 ? "" : after.slice(colon + 1)
  } else {
    const colon = hostinfo.indexOf(":")
    rawHost = colon === -1 ? hostinfo : hostinfo.slice(0, colon)
    rawPort = colon === -1 ? "" : hostinfo.slice(colon + 1)
  }
  let port: number | undefined
  if (rawPort !== "") {
    if (!/^[0-9]+$/.test(rawPort)) return new UrlError(`Port could not be cast to integer value as '${rawPort}'`)
    port = parseInt(rawPort, 10)
    if (port > 65535) return new UrlError("Port out of range 0-65535")
  }
  // Python lowercases the hostname but keeps an IPv6 zone (`%eth0`) as written.
  const pct = rawHost.indexOf("%")
  const hostname = pct === -1 ? rawHost.toLowerCase() : rawHost.slice(0, pct).toLowerCase() + rawHost.slice(pct)
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath
  const orUndefined = (s: string | undefined) => (s === undefined || s === "" ? undefined : unquote(s) || undefined)
  return {
    scheme,
    hostname: orUndefined(hostname),
    port,
    username: orUndefined(rawUser),
    password: orUndefined(rawPassword),
    path: orUndefined(path),
    query
  }
}

/** kombu `as_url(..., sanitize=True)`: password masked `**`, query dropped, `/` always added. */
export const sanitizedUrl = (parts: UrlParts, mask = "**"): string => {
  let out = `${parts.scheme}://`
  if (parts.username !== undefined || parts.password !== undefined) {
    if (parts.username !== undefined) out += quote(parts.username)
    if (parts.password !== undefined) out += mask ? `:${mask}` : ":"
    out += "@"
  }
  if (parts.hostname !== undefined) out += quote(parts.hostname)
  if (parts.port) out += `:${parts.port}`
  out += "/"
  if (parts.path !== undefined) out += parts.path
  return out
}

/** kombu `maybe_sanitize_url`: URLs (containing `://`) sanitized, anything else kept as is. */
export const maybeSanitizeUrl = (url: string): string | UrlError => {
  if (!url.includes("://")) return url
  const parts = urlToParts(url)
  return parts instanceof UrlError ? parts : sanitizedUrl(parts)
}

/** Python `int(s)` for a base-10 string, or undefined where Python raises ValueError. */
export const pyInt = (s: string): number | undefined => {
  const t = s.trim()
  if (!/^[+-]?[0-9]+(?:_[0-9]+)*$/.test(t)) return undefined
  const n = Number(t.replace(/_/g, ""))
  return Number.isSafeInteger(n) ? n : undefined
}
