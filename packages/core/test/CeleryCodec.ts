/**
 * The oracle shared by the Meta and PyJson tests: real Celery 5.2 / kombu code on the system
 * python (python/celery_codec.py), one subprocess per batch. Values cross the pipe tagged so
 * Python builds exactly the types meant (see the script's docstring for the tagged form).
 */
import { RemoteException } from "@effect-celery/core/Errors"
import * as PyJson from "@effect-celery/core/PyJson"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import { HarnessError } from "../../../test-support/RedisServer.js"
import { pythonJsonLines } from "../../../test-support/Python.js"

export type Reply = Record<string, unknown>

const ORACLE = fileURLToPath(new URL("./python/celery_codec.py", import.meta.url))

/** One reply per request, in order; a request the script could not serve fails the batch. */
export const oracle = (requests: ReadonlyArray<Reply>): Effect.Effect<Array<Reply>, HarnessError> =>
  pythonJsonLines<Reply>({ script: ORACLE }, requests, { label: "celery oracle" }).pipe(
    Effect.filterOrFail(
      (replies) => !replies.some((r) => "oracle_error" in r),
      (replies) =>
        new HarnessError({
          message: `celery oracle: ${String(replies.find((r) => "oracle_error" in r)?.["oracle_error"])}`
        })
    )
  )

const pyFloat = (n: number): string =>
  n !== n ? "nan" : n === Infinity ? "inf" : n === -Infinity ? "-inf" : Object.is(n, -0) ? "-0" : String(n)

/** The Python value the encoder means by a JS value, in the oracle's tagged form. */
export const tagged = (v: unknown): unknown => {
  if (v === null || v === undefined) return null
  switch (typeof v) {
    case "boolean":
    case "string":
      return v
    case "number":
      return Number.isInteger(v) && !Object.is(v, -0) ? { i: BigInt(v).toString() } : { f: pyFloat(v) }
    case "bigint":
      return { i: v.toString() }
  }
  if (v instanceof PyJson.PyFloat) return { f: pyFloat(v.value) }
  if (Array.isArray(v)) return { l: v.map(tagged) }
  if (v instanceof RemoteException)
    return { exc: { type: v.excType, module: v.excModule, args: v.excMessage.map(tagged) } }
  if (v instanceof Date) return { dt: v.toISOString().replace("Z", "+00:00") }
  if (v instanceof PyJson.Typed)
    return {
      d: [
        ["__type__", v.type],
        ["__value__", tagged(v.value)]
      ]
    }
  return {
    d: Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => [k, tagged(x)])
  }
}
