/**
 * Python `json.dumps` / `json.loads` compatibility, as kombu uses them for Celery's `json` serializer.
 *
 * Encoding writes the exact bytes Python writes: separators `", "` / `": "`, `ensure_ascii`
 * (non-ASCII as lowercase `\uXXXX`, astral chars as surrogate pairs), `NaN` / `Infinity`, Python
 * int and float reprs.
 *
 * JS → Python value mapping used by the encoder:
 * - integer-valued `number` → int (`5`, `10000000000000000000000`); other numbers → float repr
 *   (`0.1`, `1e-07`, `1.5e+16`, `NaN`, `-Infinity`); `-0` → `-0.0`; `bigint` → int.
 * - `float(n)` (a `PyFloat`) forces the float repr of an integral value: `float(5)` → `5.0`.
 * - `null` → `null`. `undefined` as an object property is skipped (like `JSON.stringify`); as an
 *   array element or the top-level value it is written as `null` (Python `None`).
 * - arrays → arrays; plain objects and class instances → objects with their own enumerable
 *   string keys in property order; a `toJSON()` method is used first when present (kombu's
 *   `__json__` hook).
 * - `Date` → the string kombu 5.2 writes for a UTC datetime (`isoformat()` with `+00:00` → `Z`,
 *   e.g. `"2026-11-22T13:47:04.963000Z"`): readable by every kombu. Write an explicit
 *   `Typed` to get a kombu ≥ 5.3 envelope instead.
 * - `Typed` → its envelope `{"__type__": type, "__value__": value}`.
 * - `RemoteException` → Celery's exception dict `{"exc_type", "exc_message", "exc_module"}`.
 * - functions, symbols, `Map`, `Set`, binary buffers and cycles are unencodable (`PyJsonError`).
 *
 * Decoding accepts exactly what Python's `json.loads` accepts (plus `NaN` / `Infinity` /
 * `-Infinity`). Integer literals beyond `Number.MAX_SAFE_INTEGER` become `bigint`; every other
 * number is a `number`, so the wire distinction `5` vs `5.0` is lost on decode (both read as 5).
 * kombu ≥ 5.3 envelopes (an object whose keys are exactly `__type__` and `__value__`) become
 * `Typed` values and re-encode to the same bytes; an unknown `__type__` is a decode error.
 * Objects with integer-like keys (`{"2": …, "1": …}`) come back in JS property order (integer
 * keys ascending first), so their re-encoding may order keys differently.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { RemoteException } from "./Errors.js"

/** The JSON text could not be decoded, or a value cannot be encoded. */
export class PyJsonError extends Schema.TaggedError<PyJsonError>("@effect-celery/core/PyJsonError")("PyJsonError", {
  message: Schema.String,
  /** The offending character offset when decoding. */
  position: Schema.optional(Schema.Number)
}) {}

/** A number that must be written with Python's float repr even when integral (`5.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Wrap a number so it encodes as a Python float. */
export const float = (n: number): PyFloat => new PyFloat(n)

/** The kombu ≥ 5.3 envelope types. */
export type TypedType = "datetime" | "date" | "time" | "decimal" | "uuid" | "bytes" | "base64"

const TYPED_TYPES: ReadonlySet<string> = new Set(["datetime", "date", "time", "decimal", "uuid", "bytes", "base64"])

/**
 * A kombu ≥ 5.3 typed envelope `{"__type__": type, "__value__": value}`, kept as written so it
 * re-encodes to the same bytes. `value` is the decoded `__value__` (a string, or for `uuid` an
 * object such as `{"hex": "…", "version": 4}`).
 */
export class Typed {
  constructor(
    readonly type: TypedType,
    readonly value: unknown
  ) {}

  /** The instant of a `datetime` / `date` envelope (naive values read as UTC), if it parses. */
  toDate(): Date | undefined {
    if ((this.type !== "datetime" && this.type !== "date") || typeof this.value !== "string") return undefined
    const m =
      /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$/.exec(
        this.value
      )
    if (m === null) return undefined
    const frac = m[7] === undefined ? 0 : Number(m[7].padEnd(6, "0")) / 1000
    let t = Date.UTC(
      Number(m[1]),
      Number(m[2]) - 1,
      Number(m[3]),
      Number(m[4] ?? 0),
      Number(m[5] ?? 0),
      Number(m[6] ?? 0)
    )
    t += Math.floor(frac)
    const tz = m[8]
    if (tz !== undefined && tz !== "Z") {
      const sign = tz[0] === "-" ? -1 : 1
      const [h, mi, s] = tz.slice(1).split(":").map(Number)
      t -= sign * (((h ?? 0) * 60 + (mi ?? 0)) * 60 + (s ?? 0)) * 1000
    }
    return Number.isFinite(t) ? new Date(t) : undefined
  }

  /** The bytes of a `bytes` (utf-8 text) or `base64` envelope. */
  toBytes(): Uint8Array | undefined {
    if (typeof this.value !== "string") return undefined
    if (this.type === "bytes") return new TextEncoder().encode(this.value)
    if (this.type === "base64") return new Uint8Array(Buffer.from(this.value, "base64"))
    return undefined
  }
}

/** Build an envelope value. */
export const typed = (type: TypedType, value: unknown): Typed => new Typed(type, value)

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/** Python `repr(float(n))` in JSON form (`NaN`, `Infinity`, `-Infinity` for the non-finite). */
export const formatFloat = (n: number): string => {
  if (n !== n) return "NaN"
  if (n === Infinity) return "Infinity"
  if (n === -Infinity) return "-Infinity"
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0"
  const a = n < 0 ? -n : n
  // Python switches to exponent notation when the decimal exponent is < -4 or >= 16; in that
  // range JS prints the same shortest round-trip digits without an exponent.
  if (a >= 1e-4 && a < 1e16) {
    const s = String(n)
    return Number.isInteger(n) ? s + ".0" : s
  }
  const s = n.toExponential() // shortest round-trip digits, e.g. "1.5e+16", "1e-7"
  const e = s.indexOf("e")
  const sign = s[e + 1] as string
  const digits = s.slice(e + 2)
  return s.slice(0, e) + "e" + sign + (digits.length < 2 ? "0" + digits : digits)
}

/** Python `repr(int(n))` of an integer-valued number. */
// Beyond 2^53 `String(n)` gives the shortest digits ("…35000"); Python's int has the exact value.
const formatInt = (n: number): string => (Number.isSafeInteger(n) ? (n === 0 ? "0" : String(n)) : BigInt(n).toString())

const formatNumber = (n: number): string =>
  Number.isInteger(n) ? (n === 0 && Object.is(n, -0) ? "-0.0" : formatInt(n)) : formatFloat(n)

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

// Anything that is not printable ASCII, or a quote / backslash, needs escaping.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\u007f-\uffff]/
const NON_ASCII = /[\u007f-\uffff]/g
const HEX4 = (c: number): string => {
  const h = c.toString(16)
  return h.length === 4 ? h : "0000".slice(h.length) + h
}
const escapeNonAscii = (c: string): string => "\\u" + HEX4(c.charCodeAt(0))

/** A JSON string literal exactly as Python's `ensure_ascii` encoder writes it. */
export const encodeString = (s: string): string => {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"'
  // JSON.stringify already escapes quotes, backslashes, controls (same spelling as Python) and
  // lone surrogates; only the raw non-ASCII it leaves in place remains to escape.
  const j = JSON.stringify(s)
  NON_ASCII.lastIndex = 0
  return NON_ASCII.test(j) ? j.replace(NON_ASCII, escapeNonAscii) : j
}

// Internal control flow only: caught at the module's entry points, never escapes.
class Unencodable extends Error {}

const typeName = (v: unknown): string => {
  if (typeof v === "object" && v !== null) {
    const ctor = (v as { constructor?: { name?: unknown } }).constructor
    return typeof ctor?.name === "string" && ctor.name !== "" ? ctor.name : "object"
  }
  return typeof v
}

/** A Python-`safe_repr`-like stand-in for a value that cannot be encoded (lossy mode). */
const lossyRepr = (v: unknown): string => {
  if (typeof v === "function") return `<function ${v.name === "" ? "<anonymous>" : v.name}>`
  if (typeof v === "symbol") return v.toString()
  try {
    return `<${typeName(v)} object>`
  } catch {
    return "<object>"
  }
}

/** kombu 5.2's string for a UTC datetime: `isoformat()` with `+00:00` written as `Z`. */
const dateToKombu52 = (d: Date): string | undefined => {
  const t = d.getTime()
  if (!Number.isFinite(t)) return undefined
  const iso = d.toISOString() // "2026-11-22T13:47:04.963Z" (or ±YYYYYY for far years)
  const dot = iso.lastIndexOf(".")
  const ms = iso.slice(dot + 1, dot + 4)
  return iso.slice(0, dot) + (ms === "000" ? "" : "." + ms + "000") + "Z"
}

const isPlainData = (v: object): boolean => {
  const p = Object.getPrototypeOf(v) as unknown
  return p === Object.prototype || p === null
}

class Encoder {
  // Objects on the current path: a reference back to one of them is a cycle (Python's check).
  private readonly stack: Array<object> = []
  constructor(private readonly lossy: boolean) {}

  fail(v: unknown, message: string): string {
    if (this.lossy) return encodeString(lossyRepr(v))
    throw new Unencodable(message)
  }

  value(v: unknown): string {
    switch (typeof v) {
      case "string":
        return encodeString(v)
      case "number":
        return formatNumber(v)
      case "boolean":
        return v ? "true" : "false"
      case "bigint":
        return v.toString()
      case "undefined":
        return "null"
      case "object":
        return v === null ? "null" : this.object(v)
      default:
        return this.fail(v, `Object of type ${typeof v} is not JSON serializable`)
    }
  }

  object(o: object): string {
    if (this.stack.includes(o)) {
      return this.lossy ? encodeString("<circular reference>") : this.fail(o, "Circular reference detected")
    }
    if (Array.isArray(o)) {
      const n = o.length
      if (n === 0) return "[]"
      this.stack.push(o)
      let out = "[" + this.value(o[0])
      for (let i = 1; i < n; i++) out += ", " + this.value(o[i])
      this.stack.pop()
      return out + "]"
    }
    if (!isPlainData(o)) {
      if (o instanceof PyFloat) return formatFloat(o.value)
      if (o instanceof Typed) {
        this.stack.push(o)
        const out = '{"__type__": ' + encodeString(o.type) + ', "__value__": ' + this.value(o.value) + "}"
        this.stack.pop()
        return out
      }
      if (o instanceof RemoteException) {
        this.stack.push(o)
        const out =
          '{"exc_type": ' +
          encodeString(o.excType) +
          ', "exc_message": ' +
          this.excArgs(o.excMessage) +
          ', "exc_module": ' +
          encodeString(o.excModule) +
          "}"
        this.stack.pop()
        return out
      }
      if (o instanceof Date) {
        const s = dateToKombu52(o)
        return s === undefined ? this.fail(o, "Invalid Date is not JSON serializable") : encodeString(s)
      }
      if (
        o instanceof Map ||
        o instanceof Set ||
        o instanceof WeakMap ||
        o instanceof WeakSet ||
        o instanceof ArrayBuffer ||
        ArrayBuffer.isView(o) ||
        o instanceof Promise
      ) {
        return this.fail(o, `Object of type ${typeName(o)} is not JSON serializable`)
      }
    }
    const toJSON = (o as { toJSON?: unknown }).toJSON
    if (typeof toJSON === "function") {
      this.stack.push(o)
      const out = this.value((toJSON as () => unknown).call(o))
      this.stack.pop()
      return out
    }
    this.stack.push(o)
    let out = "{"
    let first = true
    const rec = o as Record<string, unknown>
    for (const k in rec) {
      if (!Object.prototype.hasOwnProperty.call(rec, k)) continue
      const v = rec[k]
      if (v === undefined) continue
      out += (first ? "" : ", ") + encodeString(k) + ": " + this.value(v)
      first = false
    }
    this.stack.pop()
    return out + "}"
  }

  // Celery's `ensure_serializable`: an argument that cannot be encoded is replaced by its repr.
  excArgs(args: ReadonlyArray<unknown>): string {
    if (args.length === 0) return "[]"
    const parts: Array<string> = []
    for (const a of args) {
      const depth = this.stack.length
      try {
        parts.push(this.value(a))
      } catch (e) {
        if (!(e instanceof Unencodable)) throw e
        this.stack.length = depth
        parts.push(encodeString(lossyRepr(a)))
      }
    }
    return "[" + parts.join(", ") + "]"
  }
}

const toError = (e: unknown): PyJsonError =>
  new PyJsonError({
    message:
      e instanceof Unencodable
        ? e.message
        : e instanceof RangeError
          ? "Maximum nesting depth exceeded"
          : `Cannot encode: ${String(e)}`
  })

/** Encode as Python's `json.dumps` (kombu) would; unencodable values give a `PyJsonError`. */
export const encodeEither = (value: unknown): Either.Either<string, PyJsonError> => {
  try {
    return Either.right(new Encoder(false).value(value))
  } catch (e) {
    return Either.left(toError(e))
  }
}

/**
 * Encode a value known to be encodable (JSON data, `PyFloat`, `Typed`, `RemoteException`, …).
 * Throws `PyJsonError` otherwise: use `encodeEither` or `encodeLossy` on untrusted input.
 */
export const encode = (value: unknown): string => {
  try {
    return new Encoder(false).value(value)
  } catch (e) {
    throw toError(e)
  }
}

/**
 * Encode, replacing every unencodable value (function, symbol, cycle, `Map`…) by a string stand-in
 * as Celery's `ensure_serializable` does for exception arguments. Never throws (a structure too
 * deep for the stack encodes as a string stand-in).
 */
export const encodeLossy = (value: unknown): string => {
  try {
    return new Encoder(true).value(value)
  } catch {
    return encodeString("<unencodable value>")
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

// Internal control flow only: caught by `decode`, never escapes.
class ParseFailure extends Error {
  constructor(
    message: string,
    readonly pos: number
  ) {
    super(message)
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y

const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t"
}

const setKey = (o: Record<string, unknown>, k: string, v: unknown): void => {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true })
  else o[k] = v
}

/** kombu's `object_hook`: an object with exactly the keys `__type__` and `__value__` is an envelope. */
const envelope = (o: Record<string, unknown>): Typed | undefined => {
  let n = 0
  for (const k in o) {
    if (k !== "__type__" && k !== "__value__") return undefined
    n++
  }
  if (n !== 2) return undefined
  const type = o["__type__"]
  const value = o["__value__"]
  if (typeof type !== "string" || !TYPED_TYPES.has(type)) {
    throw new ParseFailure(
      `Unsupported envelope type ${typeof type === "string" ? JSON.stringify(type) : typeof type}`,
      -1
    )
  }
  const wantsObject = type === "uuid"
  const ok = wantsObject
    ? typeof value === "object" && value !== null && !Array.isArray(value)
    : typeof value === "string"
  if (!ok) throw new ParseFailure(`Invalid ${type} envelope value`, -1)
  return new Typed(type as TypedType, value)
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** The full parser: Python's `json.scanner` grammar, with Python's error messages. */
class Parser {
  pos = 0
  constructor(readonly text: string) {}

  ws(): void {
    const t = this.text
    let p = this.pos
    while (p < t.length && isWs(t.charCodeAt(p))) p++
    this.pos = p
  }

  fail(message: string, pos: number = this.pos): never {
    throw new ParseFailure(message, pos)
  }

  value(): unknown {
    const t = this.text
    const p = this.pos
    const c = t.charCodeAt(p)
    switch (c) {
      case 0x22: // "
        return this.string()
      case 0x7b: // {
        return this.object()
      case 0x5b: // [
        return this.array()
      case 0x6e: // n
        if (t.startsWith("null", p)) {
          this.pos = p + 4
          return null
        }
        break
      case 0x74: // t
        if (t.startsWith("true", p)) {
          this.pos = p + 4
          return true
        }
        break
      case 0x66: // f
        if (t.startsWith("false", p)) {
          this.pos = p + 5
          return false
        }
        break
      case 0x4e: // N
        if (t.startsWith("NaN", p)) {
          this.pos = p + 3
          return NaN
        }
        break
      case 0x49: // I
        if (t.startsWith("Infinity", p)) {
          this.pos = p + 8
          return Infinity
        }
        break
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = p
      const m = NUMBER.exec(t)
      if (m !== null) {
        this.pos = p + m[0].length
        return m[1] === undefined && m[2] === undefined ? intLiteral(m[0]) : Number(m[0])
      }
      if (t.startsWith("-Infinity", p)) {
        this.pos = p + 9
        return -Infinity
      }
    }
    return this.fail("Expecting value", p)
  }

  string(): string {
    const t = this.text
    const start = this.pos // at the opening quote
    let p = start + 1
    let chunkStart = p
    let out = ""
    for (;;) {
      if (p >= t.length) return this.fail("Unterminated string starting at", start)
      const c = t.charCodeAt(p)
      if (c === 0x22) {
        this.pos = p + 1
        return out + t.slice(chunkStart, p)
      }
      if (c === 0x5c) {
        out += t.slice(chunkStart, p)
        const e = t[p + 1]
        if (e === undefined) return this.fail("Unterminated string starting at", start)
        if (e === "u") {
          // CPython wants a character after the four digits (then reports a bad escape, not an
          // unterminated string).
          if (p + 6 >= t.length) return this.fail("Invalid \\uXXXX escape", p + 1)
          const hex = t.slice(p + 2, p + 6)
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) return this.fail("Invalid \\uXXXX escape", p + 1)
          out += String.fromCharCode(parseInt(hex, 16))
          p += 6
        } else {
          const r = ESCAPES[e]
          if (r === undefined) return this.fail("Invalid \\escape", p)
          out += r
          p += 2
        }
        chunkStart = p
        continue
      }
      if (c < 0x20) return this.fail("Invalid control character at", p)
      p++
    }
  }

  array(): Array<unknown> {
    const t = this.text
    this.pos++
    this.ws()
    const out: Array<unknown> = []
    if (t.charCodeAt(this.pos) === 0x5d) {
      this.pos++
      return out
    }
    for (;;) {
      this.ws()
      out.push(this.value())
      this.ws()
      const c = t.charCodeAt(this.pos)
      if (c === 0x5d) {
        this.pos++
        return out
      }
      if (c !== 0x2c) return this.fail("Expecting ',' delimiter")
      this.pos++
    }
  }

  object(): unknown {
    const t = this.text
    this.pos++
    this.ws()
    const out: Record<string, unknown> = {}
    if (t.charCodeAt(this.pos) === 0x7d) {
      this.pos++
      return out
    }
    for (;;) {
      this.ws()
      if (t.charCodeAt(this.pos) !== 0x22) return this.fail("Expecting property name enclosed in double quotes")
      const k = this.string()
      this.ws()
      if (t.charCodeAt(this.pos) !== 0x3a) return this.fail("Expecting ':' delimiter")
      this.pos++
      this.ws()
      setKey(out, k, this.value())
      this.ws()
      const c = t.charCodeAt(this.pos)
      if (c === 0x7d) {
        this.pos++
        break
      }
      if (c !== 0x2c) return this.fail("Expecting ',' delimiter")
      this.pos++
    }
    if ("__type__" in out) {
      const env = envelope(out)
      if (env !== undefined) return env
    }
    return out
  }

  document(): unknown {
    if (this.text.charCodeAt(0) === 0xfeff) this.fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0)
    this.ws()
    const v = this.value()
    this.ws()
    if (this.pos !== this.text.length) this.fail("Extra data")
    return v
  }
}

const intLiteral = (s: string): number | bigint => {
  const digits = s.charCodeAt(0) === 0x2d ? s.length - 1 : s.length
  if (digits <= 15) return Number(s) || 0 // `-0` is the int 0
  const b = BigInt(s)
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b
}

/** Replace envelope objects by `Typed`, bottom-up like kombu's `object_hook`. */
const reviveEnvelopes = (v: unknown): unknown => {
  if (typeof v !== "object" || v === null) return v
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i]
      if (typeof x === "object" && x !== null) v[i] = reviveEnvelopes(x)
    }
    return v
  }
  const o = v as Record<string, unknown>
  for (const k in o) {
    const x = o[k]
    if (typeof x === "object" && x !== null) o[k] = reviveEnvelopes(x)
  }
  if ("__type__" in o) return envelope(o) ?? o
  return o
}

const SUSPECT_NUMBER = 1
const ENVELOPE_KEY = 2

/**
 * What `JSON.parse` may have got wrong, found by walking its result: a number that could be an
 * int literal beyond 2^53 (rounded or overflowed) or `-0` (an int 0 in Python), and objects with a `__type__`
 * key (envelope candidates, however the key was spelled in the text).
 */
const scan = (v: unknown): number => {
  if (typeof v === "number") {
    // Non-finite: an int literal too long for a double overflows to Infinity.
    return !Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v)) || Object.is(v, -0)
      ? SUSPECT_NUMBER
      : 0
  }
  if (typeof v !== "object" || v === null) return 0
  let flags = 0
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) flags |= scan(v[i])
    return flags
  }
  const o = v as Record<string, unknown>
  for (const k in o) {
    if (k === "__type__") flags |= ENVELOPE_KEY
    flags |= scan(o[k])
  }
  return flags
}

const lineCol = (text: string, pos: number): string => {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) {
    line++
    lineStart = i + 1
  }
  return `line ${line} column ${pos - lineStart + 1} (char ${pos})`
}

const decodeFailure = (text: string, e: unknown): PyJsonError => {
  if (e instanceof ParseFailure) {
    return e.pos < 0
      ? new PyJsonError({ message: e.message })
      : new PyJsonError({ message: `${e.message}: ${lineCol(text, e.pos)}`, position: e.pos })
  }
  if (e instanceof RangeError) return new PyJsonError({ message: "Maximum nesting depth exceeded" })
  return new PyJsonError({ message: `Cannot decode: ${String(e)}` })
}

/** Decode as kombu's `loads` does (see the module doc for the JS representation). Never throws. */
export const decode = (text: string): Either.Either<unknown, PyJsonError> => {
  try {
    // Fast path: JSON.parse, then a walk for what it cannot know. It rejects NaN / Infinity
    // tokens, so a success means there are none (outside strings).
    let v: unknown
    let parsed = true
    try {
      v = JSON.parse(text)
    } catch {
      parsed = false // the full parser reads NaN / Infinity, or reports the error as Python does
    }
    if (parsed) {
      const flags = scan(v)
      if ((flags & SUSPECT_NUMBER) === 0) return Either.right((flags & ENVELOPE_KEY) === 0 ? v : reviveEnvelopes(v))
    }
    return Either.right(new Parser(text).document())
  } catch (e) {
    return Either.left(decodeFailure(text, e))
  }
}

// ---------------------------------------------------------------------------------------------
// Python repr
// ---------------------------------------------------------------------------------------------

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u
const SIMPLE_REPR = /^[ -&(-[\]-~]*$/

/** Python `repr(str)`: quote choice, escapes, printable non-ASCII kept as is. */
export const reprString = (s: string): string => {
  if (SIMPLE_REPR.test(s)) return "'" + s + "'"
  const q = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = q
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    if (ch === q || ch === "\\") out += "\\" + ch
    else if (ch === "\t") out += "\\t"
    else if (ch === "\n") out += "\\n"
    else if (ch === "\r") out += "\\r"
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0")
    else if (c < 0x7f || !NON_PRINTABLE.test(ch)) out += ch
    else if (c <= 0xff) out += "\\x" + c.toString(16).padStart(2, "0")
    else if (c <= 0xffff) out += "\\u" + c.toString(16).padStart(4, "0")
    else out += "\\U" + c.toString(16).padStart(8, "0")
  }
  return out + q
}

const reprFloat = (n: number): string =>
  n !== n ? "nan" : n === Infinity ? "inf" : n === -Infinity ? "-inf" : formatFloat(n)

const reprBytes = (b: Uint8Array): string => {
  let hasSingle = false
  let hasDouble = false
  for (const c of b) {
    if (c === 0x27) hasSingle = true
    else if (c === 0x22) hasDouble = true
  }
  const q = hasSingle && !hasDouble ? '"' : "'"
  let out = "b" + q
  for (const c of b) {
    const ch = String.fromCharCode(c)
    if (ch === q || ch === "\\") out += "\\" + ch
    else if (ch === "\t") out += "\\t"
    else if (ch === "\n") out += "\\n"
    else if (ch === "\r") out += "\\r"
    else if (c < 0x20 || c >= 0x7f) out += "\\x" + c.toString(16).padStart(2, "0")
    else out += ch
  }
  return out + q
}

// datetime/time reprs drop trailing zero seconds / microseconds, as CPython does.
const trimZeros = (parts: Array<number>, keep: number): Array<number> => {
  const p = [...parts]
  for (let i = 0; i < 2 && p.length > keep && p[p.length - 1] === 0; i++) p.pop()
  return p
}

const reprTzinfo = (tz: string | undefined): string | undefined => {
  if (tz === undefined) return undefined
  if (tz === "Z" || /^[+-]00:00(:00(\.0+)?)?$/.test(tz)) return "datetime.timezone.utc"
  const sign = tz[0] === "-" ? -1 : 1
  const [h, m, s] = tz.slice(1).split(":").map(Number)
  const secs = sign * (((h ?? 0) * 60 + (m ?? 0)) * 60 + Math.trunc(s ?? 0))
  if (secs < 0) {
    const days = Math.floor(secs / 86400)
    return `datetime.timezone(datetime.timedelta(days=${days}, seconds=${secs - days * 86400}))`
  }
  return `datetime.timezone(datetime.timedelta(seconds=${secs}))`
}

const reprTyped = (t: Typed, inner: (v: unknown) => string): string => {
  const v = t.value
  if (typeof v === "string") {
    switch (t.type) {
      case "decimal":
        return `Decimal(${reprString(v)})`
      case "bytes":
      case "base64": {
        const b = t.toBytes()
        if (b !== undefined) return reprBytes(b)
        break
      }
      case "datetime":
      case "date": {
        const m =
          /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$/.exec(
            v
          )
        if (m === null) break
        const ymd = [Number(m[1]), Number(m[2]), Number(m[3])]
        if (t.type === "date") return `datetime.date(${ymd.join(", ")})`
        const tail = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), Number((m[7] ?? "0").padEnd(6, "0"))]
        const parts = trimZeros([...ymd, ...tail], 5)
        const tz = reprTzinfo(m[8])
        return `datetime.datetime(${parts.join(", ")}${tz === undefined ? "" : `, tzinfo=${tz}`})`
      }
      case "time": {
        const m = /^(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$/.exec(v)
        if (m === null) break
        const parts = trimZeros(
          [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0), Number((m[4] ?? "0").padEnd(6, "0"))],
          2
        )
        const tz = reprTzinfo(m[5])
        return `datetime.time(${parts.join(", ")}${tz === undefined ? "" : `, tzinfo=${tz}`})`
      }
    }
  } else if (t.type === "uuid" && typeof v === "object" && v !== null) {
    const hex = (v as { hex?: unknown }).hex
    if (typeof hex === "string" && /^[0-9a-fA-F]{32}$/.test(hex)) {
      const h = hex.toLowerCase()
      return `UUID('${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}')`
    }
  }
  return inner({ __type__: t.type, __value__: v })
}

/**
 * Python `repr()` of a decoded value: `'text'`, `True`/`False`/`None`, ints and floats
 * (`nan`, `inf`), `[1, 2]`, `{'a': 1}`, envelopes as the Python objects they stand for
 * (`Decimal('1.10')`, `datetime.datetime(2026, 1, 2, 3, 4, 5)`, `UUID('…')`, `b'…'`),
 * a `RemoteException` as the exception (`MyError('x', 1)`).
 */
export const repr = (value: unknown): string => {
  const stack: Array<object> = []
  const go = (v: unknown): string => {
    switch (typeof v) {
      case "string":
        return reprString(v)
      case "number":
        return Number.isInteger(v) && !Object.is(v, -0) ? formatInt(v) : reprFloat(v)
      case "bigint":
        return v.toString()
      case "boolean":
        return v ? "True" : "False"
      case "undefined":
        return "None"
      case "object": {
        if (v === null) return "None"
        if (v instanceof PyFloat) return reprFloat(v.value)
        if (v instanceof RemoteException) return exceptionRepr(v)
        if (v instanceof Typed) return reprTyped(v, go)
        if (v instanceof Date) {
          const s = dateToKombu52(v)
          return s === undefined ? "None" : reprTyped(new Typed("datetime", s), go)
        }
        if (stack.includes(v)) return Array.isArray(v) ? "[...]" : "{...}"
        stack.push(v)
        let out: string
        if (Array.isArray(v)) {
          out = "[" + v.map(go).join(", ") + "]"
        } else {
          const parts: Array<string> = []
          const rec = v as Record<string, unknown>
          for (const k in rec) {
            if (Object.prototype.hasOwnProperty.call(rec, k) && rec[k] !== undefined) {
              parts.push(reprString(k) + ": " + go(rec[k]))
            }
          }
          out = "{" + parts.join(", ") + "}"
        }
        stack.pop()
        return out
      }
      default:
        return lossyRepr(v)
    }
  }
  return go(value)
}

/**
 * Python `repr()` of the exception a `RemoteException` stands for, as `BaseException.__repr__`
 * writes it: `KeyError()`, `ValueError('bad')`, `MyError('x', 1)` (the class `__name__`, i.e. the
 * last segment of a nested qualname).
 */
export const exceptionRepr = (exc: RemoteException): string => {
  const dot = exc.excType.lastIndexOf(".")
  const name = dot === -1 ? exc.excType : exc.excType.slice(dot + 1)
  const args = exc.excMessage
  if (args.length === 1) return `${name}(${repr(args[0])})`
  return `${name}(${args.map(repr).join(", ")})`
}
