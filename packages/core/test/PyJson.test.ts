import { RemoteException } from "@effect-celery/core/Errors"
import * as PyJson from "@effect-celery/core/PyJson"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import fc from "fast-check"
import { oracle, tagged } from "./CeleryCodec.js"

/** A value Python's `json.loads` returned, in the JS form `PyJson.decode` promises. */
const untagged = (v: unknown): unknown => {
  if (v === null || typeof v !== "object") return v
  const t = v as Record<string, unknown>
  if ("i" in t) {
    const b = BigInt(t["i"] as string)
    return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b
  }
  if ("f" in t) {
    const s = t["f"] as string
    return s === "nan" ? NaN : s === "inf" ? Infinity : s === "-inf" ? -Infinity : Number(s)
  }
  if ("l" in t) return (t["l"] as Array<unknown>).map(untagged)
  if ("d" in t) {
    const o: Record<string, unknown> = {}
    for (const [k, x] of t["d"] as Array<[string, unknown]>) {
      Object.defineProperty(o, k, { value: untagged(x), writable: true, enumerable: true, configurable: true })
    }
    return o
  }
  throw new Error(`unexpected tagged value ${JSON.stringify(v)}`)
}

/** What `decode(encode(v))` must give back for a JS value. */
const normalized = (v: unknown): unknown => {
  if (v === undefined) return null
  if (typeof v === "number") {
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return BigInt(v)
    return Object.is(v, -0) ? -0 : v
  }
  if (typeof v === "bigint")
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
  // A float literal reads back as a number, even when integral and huge ("1e+22").
  if (v instanceof PyJson.PyFloat) return v.value
  if (Array.isArray(v)) return v.map(normalized)
  if (v !== null && typeof v === "object") {
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined)
        Object.defineProperty(o, k, { value: normalized(x), writable: true, enumerable: true, configurable: true })
    }
    return o
  }
  return v
}

const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got Left: ${String(e.left)}`)
  return e.right
}
const left = <A, E>(e: Either.Either<A, E>): E => {
  if (Either.isRight(e)) throw new Error(`expected Left, got Right: ${String(e.right)}`)
  return e.left
}

// ---------------------------------------------------------------------------------------------
// Arbitraries. Strings draw from ranges whose Unicode properties are stable across the Unicode
// versions of Node's ICU and Python's unicodedata (repr depends on "printable").

const codeUnitRanges: ReadonlyArray<readonly [number, number]> = [
  [0x20, 0x7e],
  [0x00, 0x1f],
  [0x7f, 0xff],
  [0x100, 0x2ff],
  [0x370, 0x3ff],
  [0x2000, 0x206f], // spaces, zero-width and bidi controls, line/paragraph separators
  [0x4e00, 0x4e80],
  [0xd800, 0xdfff], // lone surrogates
  [0xe000, 0xe00f],
  [0xfff0, 0xffff],
  [0x1f600, 0x1f64f],
  [0x10fff0, 0x10ffff]
]
const char = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('"', "\\", "/", "'", "\n", "NaN", "Infinity", "-0", "__type__", "12345678901234567")
  },
  ...codeUnitRanges.map(([min, max]) => ({
    weight: 1,
    // A lone surrogate is followed by "x" so that two of them never pair up by accident into a code
    // point whose printability depends on the Unicode version (Python 3.11 vs Node's ICU).
    arbitrary: fc.integer({ min, max }).map((c) => String.fromCodePoint(c) + (c >= 0xd800 && c <= 0xdfff ? "x" : ""))
  }))
)
const str = fc.string({ unit: char, maxLength: 12 })

const double = fc.oneof(
  fc.double(),
  fc.constantFrom(
    0.1,
    1e-7,
    1e22,
    1.5e16,
    1e16,
    9999999999999998,
    0.0001,
    0.00001,
    123.456,
    5e-324,
    1.7976931348623157e308,
    -0
  ),
  fc.integer({ min: -1000, max: 1000 }).map((n) => n / 8)
)
const integer = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.constantFrom(2 ** 53, -(2 ** 53), 1e21, 1e22, 2n ** 53n + 1n, -(2n ** 64n))
)
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  str,
  integer,
  double,
  double.map((d) => PyJson.float(d)),
  fc.integer({ min: -100, max: 100 }).map((n) => PyJson.float(n))
)
const { value: jsonish } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(str, tie("value"), { maxKeys: 5 })
  )
}))

// ---------------------------------------------------------------------------------------------

describe("PyJson.encode", () => {
  const vectors: ReadonlyArray<readonly [unknown, string]> = [
    [5, "5"],
    [-17, "-17"],
    [PyJson.float(5), "5.0"],
    [PyJson.float(-0), "-0.0"],
    [-0, "-0.0"],
    [0.1, "0.1"],
    [1e-7, "1e-07"],
    [PyJson.float(1e22), "1e+22"],
    [1e22, "10000000000000000000000"],
    [PyJson.float(1.5e16), "1.5e+16"],
    [PyJson.float(1e16), "1e+16"],
    [PyJson.float(1e15), "1000000000000000.0"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [123.456, "123.456"],
    [5e-324, "5e-324"],
    [
      1.7976931348623157e308,
      "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368"
    ],
    [PyJson.float(1.7976931348623157e308), "1.7976931348623157e+308"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
    [2n ** 70n, "1180591620717411303424"],
    [true, "true"],
    [null, "null"],
    ["caf\u00e9", '"caf\\u00e9"'],
    ["\u{1F600}", '"\\ud83d\\ude00"'],
    ["\u4e2d\u6587", '"\\u4e2d\\u6587"'],
    ["a/b", '"a/b"'],
    ["\u0000\b\t\n\f\r\u001f\u007f\u2028", '"\\u0000\\b\\t\\n\\f\\r\\u001f\\u007f\\u2028"'],
    ['q"\\', '"q\\"\\\\"'],
    ["\ud800x", '"\\ud800x"'],
    [[], "[]"],
    [{}, "{}"],
    [[1, [2, { a: "b" }]], '[1, [2, {"a": "b"}]]'],
    [{ b: 1, a: [null, true] }, '{"b": 1, "a": [null, true]}'],
    [PyJson.typed("decimal", "1.10"), '{"__type__": "decimal", "__value__": "1.10"}'],
    [
      new RemoteException({ excType: "MyError", excMessage: ["x", 1], excModule: "tasks" }),
      '{"exc_type": "MyError", "exc_message": ["x", 1], "exc_module": "tasks"}'
    ]
  ]

  it.effect("writes the literal bytes Python writes, and so does real kombu", () =>
    Effect.gen(function* () {
      for (const [v, expected] of vectors) assert.strictEqual(PyJson.encode(v), expected, `encode(${String(v)})`)
      // Exceptions are Celery's business (prepare_exception), checked against Celery in Meta.test.ts.
      const plain = vectors.filter(([v]) => !(v instanceof RemoteException))
      const replies = yield* oracle(plain.map(([v]) => ({ op: "dumps", value: tagged(v) })))
      replies.forEach((r, i) => assert.strictEqual(r["bytes"], plain[i]![1], `kombu dumps of vector ${i}`))
    })
  )

  it.effect("matches kombu's json.dumps (and Python's repr) on random values", () =>
    Effect.gen(function* () {
      const seed = Date.now() ^ 0x5eed
      const values = fc.sample(jsonish, { numRuns: 1500, seed })
      const replies = yield* oracle(values.map((v) => ({ op: "dumps", value: tagged(v), repr: true })))
      values.forEach((v, i) => {
        const r = replies[i]!
        const ctx = `seed ${seed}, value #${i}: ${PyJson.encodeLossy(v)}`
        assert.strictEqual(PyJson.encode(v), r["bytes"], ctx)
        assert.strictEqual(PyJson.repr(v), r["repr"], ctx)
      })
    })
  )

  it.effect("writes a Date as kombu 5.2 writes a UTC datetime", () =>
    Effect.gen(function* () {
      const dates = [new Date(1700000000123), new Date(1700000000000), new Date(0), new Date(-1)]
      const replies = yield* oracle(dates.map((d) => ({ op: "dumps", value: tagged(d) })))
      dates.forEach((d, i) => assert.strictEqual(PyJson.encode(d), replies[i]!["bytes"]))
      assert.strictEqual(PyJson.encode(new Date(1700000000123)), '"2023-11-14T22:13:20.123000Z"')
    })
  )

  it.effect("skips undefined object properties, writes undefined elements as null, uses toJSON", () =>
    Effect.sync(() => {
      assert.strictEqual(PyJson.encode({ a: undefined, b: 1 }), '{"b": 1}')
      assert.strictEqual(PyJson.encode([undefined, 1]), "[null, 1]")
      assert.strictEqual(PyJson.encode(undefined), "null")
      assert.strictEqual(PyJson.encode({ toJSON: () => ({ x: [1] }) }), '{"x": [1]}')
      class Point {
        constructor(
          readonly x: number,
          readonly y: number
        ) {}
      }
      assert.strictEqual(PyJson.encode(new Point(1, 2)), '{"x": 1, "y": 2}')
      const shared = { s: 1 }
      assert.strictEqual(PyJson.encode([shared, shared]), '[{"s": 1}, {"s": 1}]')
      const nullProto = Object.create(null) as Record<string, unknown>
      nullProto["k"] = "v"
      assert.strictEqual(PyJson.encode(nullProto), '{"k": "v"}')
    })
  )

  it.effect("refuses unencodable values with a typed error and never throws from encodeEither / encodeLossy", () =>
    Effect.sync(() => {
      const cyclic: Record<string, unknown> = { a: 1 }
      cyclic["self"] = cyclic
      const cyclicArray: Array<unknown> = []
      cyclicArray.push(cyclicArray)
      const cases: ReadonlyArray<readonly [unknown, RegExp]> = [
        [() => 1, /function is not JSON serializable/],
        [Symbol("s"), /symbol is not JSON serializable/],
        [cyclic, /Circular reference detected/],
        [cyclicArray, /Circular reference detected/],
        [new Map([[1, 2]]), /Map is not JSON serializable/],
        [new Set([1]), /Set is not JSON serializable/],
        [new Uint8Array(2), /Uint8Array is not JSON serializable/],
        [new Date(NaN), /Invalid Date/],
        [{ nested: [1, { f: () => 1 }] }, /function is not JSON serializable/]
      ]
      for (const [v, message] of cases) {
        const e = left(PyJson.encodeEither(v))
        assert.instanceOf(e, PyJson.PyJsonError)
        assert.match(e.message, message)
        expect(() => PyJson.encode(v)).toThrow(PyJson.PyJsonError)
        assert.isString(PyJson.encodeLossy(v))
      }
      assert.strictEqual(PyJson.encodeLossy({ a: 1, f: function named() {} }), '{"a": 1, "f": "<function named>"}')
      assert.strictEqual(PyJson.encodeLossy(cyclic), '{"a": 1, "self": "<circular reference>"}')
      let deep: unknown = 1
      for (let i = 0; i < 200000; i++) deep = [deep]
      assert.match(left(PyJson.encodeEither(deep)).message, /nesting/)
      assert.isString(PyJson.encodeLossy(deep))
    })
  )

  it.effect("replaces unencodable exception arguments by a repr, as Celery's ensure_serializable does", () =>
    Effect.sync(() => {
      const exc = new RemoteException({ excType: "E", excMessage: ["ok", () => 1, 2], excModule: "m" })
      assert.strictEqual(
        PyJson.encode(exc),
        '{"exc_type": "E", "exc_message": ["ok", "<function <anonymous>>", 2], "exc_module": "m"}'
      )
    })
  )
})

describe("PyJson.decode", () => {
  it.effect("reads Python's numbers, NaN and Infinity, big ints as bigint", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(right(PyJson.decode("[NaN, Infinity, -Infinity]")), [NaN, Infinity, -Infinity])
      assert.strictEqual(right(PyJson.decode("9007199254740991")), 9007199254740991)
      assert.strictEqual(right(PyJson.decode("9007199254740993")), 9007199254740993n)
      assert.strictEqual(right(PyJson.decode("-9007199254740993")), -9007199254740993n)
      assert.strictEqual(right(PyJson.decode("100000000000000000000")), 100000000000000000000n)
      assert.strictEqual(right(PyJson.decode("12345678901234567.0")), 12345678901234568)
      assert.strictEqual(right(PyJson.decode("0.30000000000000004")), 0.30000000000000004)
      assert.strictEqual(right(PyJson.decode("5.0")), 5)
      assert.strictEqual(right(PyJson.decode("1e400")), Infinity)
      assert.strictEqual(right(PyJson.decode("1" + "0".repeat(400))), 10n ** 400n)
      assert.deepStrictEqual(right(PyJson.decode(`{"a": [-${"9".repeat(330)}]}`)), { a: [-(10n ** 330n - 1n)] })
      assert.isTrue(Object.is(right(PyJson.decode("-0")), 0))
      assert.isTrue(Object.is(right(PyJson.decode("-0.0")), -0))
      assert.deepStrictEqual(right(PyJson.decode('{"a": [-0, 1]}')), { a: [0, 1] })
      // The tokens inside strings are text, whatever path the decoder takes.
      assert.deepStrictEqual(right(PyJson.decode('["NaN", "12345678901234567", "-0"]')), [
        "NaN",
        "12345678901234567",
        "-0"
      ])
      assert.deepStrictEqual(right(PyJson.decode('["NaN", 12345678901234567]')), ["NaN", 12345678901234567n])
    })
  )

  it.effect("keeps a __proto__ key as data", () =>
    Effect.sync(() => {
      const v = right(PyJson.decode('{"__proto__": {"x": 1}, "NaN": NaN}')) as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(v), ["__proto__", "NaN"])
      assert.strictEqual(Object.getPrototypeOf(v), Object.prototype)
      assert.strictEqual(PyJson.encode(v), '{"__proto__": {"x": 1}, "NaN": NaN}')
    })
  )

  it.effect("decodes kombu >= 5.3 envelopes to Typed values that re-encode to the same bytes", () =>
    Effect.sync(() => {
      const texts = [
        '{"__type__": "datetime", "__value__": "2026-11-22T13:47:04.963130+00:00"}',
        '{"__type__": "date", "__value__": "2026-11-22"}',
        '{"__type__": "time", "__value__": "13:47:04.963130"}',
        '{"__type__": "decimal", "__value__": "1.10"}',
        '{"__type__": "uuid", "__value__": {"hex": "0ea00be8a1b24c3d8e0f000000000001", "version": 4}}',
        '{"__type__": "bytes", "__value__": "raw"}',
        '{"__type__": "base64", "__value__": "/w=="}',
        '{"__value__": "1.10", "__type__": "decimal"}'
      ]
      for (const text of texts) {
        const v = right(PyJson.decode(text))
        assert.instanceOf(v, PyJson.Typed, text)
        // The same holds on the slow path (a NaN elsewhere in the document forces it).
        const slow = right(PyJson.decode(`[${text}, NaN]`)) as Array<unknown>
        assert.deepStrictEqual(slow[0], v)
      }
      const v = right(PyJson.decode(texts[0]!)) as PyJson.Typed
      assert.strictEqual(v.type, "datetime")
      assert.strictEqual(PyJson.encode(v), texts[0])
      assert.strictEqual(v.toDate()?.toISOString(), "2026-11-22T13:47:04.963Z")
      assert.strictEqual(
        (right(PyJson.decode(texts[1]!)) as PyJson.Typed).toDate()?.toISOString(),
        "2026-11-22T00:00:00.000Z"
      )
      assert.deepStrictEqual([...(right(PyJson.decode(texts[6]!)) as PyJson.Typed).toBytes()!], [255])
      assert.deepStrictEqual([...(right(PyJson.decode(texts[5]!)) as PyJson.Typed).toBytes()!], [114, 97, 119])
      assert.strictEqual(
        PyJson.repr(right(PyJson.decode(texts[0]!))),
        "datetime.datetime(2026, 11, 22, 13, 47, 4, 963130, tzinfo=datetime.timezone.utc)"
      )
      assert.strictEqual(PyJson.repr(right(PyJson.decode(texts[2]!))), "datetime.time(13, 47, 4, 963130)")
      assert.strictEqual(PyJson.repr(right(PyJson.decode(texts[3]!))), "Decimal('1.10')")
      assert.strictEqual(PyJson.repr(right(PyJson.decode(texts[4]!))), "UUID('0ea00be8-a1b2-4c3d-8e0f-000000000001')")
      assert.strictEqual(PyJson.repr(right(PyJson.decode(texts[6]!))), "b'\\xff'")
      // Nested, bottom-up, and spelled with escapes.
      const nested = right(PyJson.decode('{"r": [{"__type__": "decimal", "__value__": "2"}], "\\u005f_type__": "x"}'))
      assert.deepStrictEqual(nested, { r: [PyJson.typed("decimal", "2")], __type__: "x" })
      const escaped = right(PyJson.decode('{"\\u005f_type__": "decimal", "__value__": "3"}'))
      assert.deepStrictEqual(escaped, PyJson.typed("decimal", "3"))
      // Not an envelope: other keys too.
      assert.deepStrictEqual(right(PyJson.decode('{"__type__": "nope", "__value__": 1, "x": 2}')), {
        __type__: "nope",
        __value__: 1,
        x: 2
      })
    })
  )

  it.effect("rejects unknown envelope types and malformed envelope values", () =>
    Effect.sync(() => {
      for (const text of [
        '{"__type__": "pickle", "__value__": "x"}',
        '[1, {"__type__": "pickle", "__value__": "x"}, NaN]',
        '{"__type__": 1, "__value__": "x"}',
        '{"__type__": "uuid", "__value__": "0ea00be8"}',
        '{"__type__": "datetime", "__value__": 5}'
      ]) {
        const e = left(PyJson.decode(text))
        assert.instanceOf(e, PyJson.PyJsonError)
        assert.match(e.message, /envelope/)
      }
    })
  )

  it.effect("reports errors as Python does, never throws", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["", "Expecting value: line 1 column 1 (char 0)"],
        ["[1, 2", "Expecting ',' delimiter: line 1 column 6 (char 5)"],
        ['{"a": 1,}', "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)"],
        ['{"a" 1}', "Expecting ':' delimiter: line 1 column 6 (char 5)"],
        ['"abc', "Unterminated string starting at: line 1 column 1 (char 0)"],
        ['"a\\qb"', "Invalid \\escape: line 1 column 3 (char 2)"],
        ['"\\u12"', "Invalid \\uXXXX escape: line 1 column 3 (char 2)"],
        ['"a\u0001"', "Invalid control character at: line 1 column 3 (char 2)"],
        ["[1]\n x", "Extra data: line 2 column 2 (char 5)"],
        ["\ufeff[]", "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"],
        ["-", "Expecting value: line 1 column 1 (char 0)"],
        ["nul", "Expecting value: line 1 column 1 (char 0)"]
      ]
      for (const [text, message] of cases) {
        const e = left(PyJson.decode(text))
        assert.strictEqual(e.message, message, JSON.stringify(text))
      }
      assert.match(left(PyJson.decode("[".repeat(200000))).message, /nesting|Expecting/)
    })
  )

  it.effect("round-trips every encodable value (property)", () =>
    Effect.sync(() => {
      fc.assert(
        fc.property(jsonish, (v) => {
          const text = PyJson.encode(v)
          const back = right(PyJson.decode(text))
          expect(back).toStrictEqual(normalized(v))
          // The slow path (forced by a NaN token) agrees with the fast path.
          expect((right(PyJson.decode(`[${text}, NaN]`)) as Array<unknown>)[0]).toStrictEqual(back)
        }),
        { numRuns: 1500 }
      )
    })
  )

  it.effect("agrees with Python's json.loads on valid and corrupted texts (values, repr, errors)", () =>
    Effect.gen(function* () {
      const seed = Date.now() ^ 0x10ad
      const values = fc.sample(jsonish, { numRuns: 600, seed })
      const mutate = fc.sample(
        fc.tuple(
          fc.nat(),
          fc.constantFrom("ins", "del", "cut", "ws"),
          fc.constantFrom(
            " ",
            "\n",
            "\t",
            ",",
            ":",
            '"',
            "\\",
            "[",
            "]",
            "{",
            "}",
            "0",
            "-",
            "e",
            ".",
            "N",
            "\u0001",
            "x",
            "\\u",
            "\\ud83d"
          )
        ),
        { numRuns: 600, seed }
      )
      const texts: Array<string> = []
      values.forEach((v, i) => {
        const t = PyJson.encode(v)
        texts.push(t)
        const [at, kind, piece] = mutate[i]!
        const p = t.length === 0 ? 0 : at % t.length
        texts.push(
          kind === "ins"
            ? t.slice(0, p) + piece + t.slice(p)
            : kind === "del"
              ? t.slice(0, p) + t.slice(p + 1)
              : kind === "cut"
                ? t.slice(0, p)
                : t.replaceAll(", ", " ,\n\t").replaceAll(": ", " :")
        )
      })
      const replies = yield* oracle(texts.map((text) => ({ op: "loads", text })))
      let errors = 0
      texts.forEach((text, i) => {
        const r = replies[i]!
        const ours = PyJson.decode(text)
        const ctx = `seed ${seed}, text ${JSON.stringify(text)}`
        if ("error" in r) {
          errors++
          assert.isTrue(Either.isLeft(ours), ctx)
          assert.strictEqual(`JSONDecodeError: ${left(ours).message}`, r["error"], ctx)
        } else {
          const v = right(ours)
          expect(v, ctx).toStrictEqual(untagged(r["value"]))
          assert.strictEqual(PyJson.repr(v), r["norm_repr"], ctx)
        }
      })
      assert.isAbove(errors, 100, "the corruptions produced errors to compare")
    })
  )
})

describe("PyJson.repr", () => {
  it.effect("writes Python reprs", () =>
    Effect.sync(() => {
      assert.strictEqual(PyJson.repr("it's"), `"it's"`)
      assert.strictEqual(PyJson.repr(`it's "q"`), `'it\\'s "q"'`)
      assert.strictEqual(PyJson.repr('a"b'), `'a"b'`)
      assert.strictEqual(PyJson.repr("caf\u00e9\u00a0\n\u0000\\"), "'caf\u00e9\\xa0\\n\\x00\\\\'")
      assert.strictEqual(
        PyJson.repr([true, false, null, 1, 1.5, NaN, -Infinity, PyJson.float(2)]),
        "[True, False, None, 1, 1.5, nan, -inf, 2.0]"
      )
      assert.strictEqual(PyJson.repr({ a: 1, "b'": [] }), `{'a': 1, "b'": []}`)
      assert.strictEqual(PyJson.repr(2n ** 64n), "18446744073709551616")
    })
  )

  it.effect("writes exceptions as BaseException.__repr__ does", () =>
    Effect.sync(() => {
      const exc = (excType: string, excMessage: ReadonlyArray<unknown>) =>
        new RemoteException({ excType, excMessage, excModule: "m" })
      assert.strictEqual(PyJson.exceptionRepr(exc("KeyError", [])), "KeyError()")
      assert.strictEqual(PyJson.exceptionRepr(exc("ValueError", ["bad"])), "ValueError('bad')")
      assert.strictEqual(PyJson.exceptionRepr(exc("MyError", ["x", 1])), "MyError('x', 1)")
      assert.strictEqual(PyJson.exceptionRepr(exc("Outer.Inner", [[1, 2]])), "Inner([1, 2])")
      assert.strictEqual(PyJson.repr([exc("E", ["a"])]), "[E('a')]")
    })
  )
})
