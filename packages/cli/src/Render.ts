/**
 * How results are shown: for people (Python `repr` of values, as a Celery user reads them) and for
 * scripts (`--json`: one JSON object per line, values written as Celery's JSON, so big integers stay
 * exact; Python's non-JSON `Infinity`/`NaN` become strings).
 */
import type { DecodeError } from "@effect-celery/core/Errors"
import type { TaskMeta } from "@effect-celery/core/Meta"
import * as PyJson from "@effect-celery/core/PyJson"
import * as TaskState from "@effect-celery/core/TaskState"

/** A JSON object from fields whose values are already JSON text, in the given order. */
export const jsonObject = (fields: ReadonlyArray<readonly [string, string]>): string =>
  "{" + fields.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(", ") + "}"

/**
 * Python's JSON (what Celery stores) made strict: the bare `NaN`, `Infinity` and `-Infinity` that
 * `json.dumps` writes are not JSON, so they become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
 */
export const strictJson = (pyJson: string): string => {
  let out = ""
  let i = 0
  while (i < pyJson.length) {
    const c = pyJson[i]!
    if (c === '"') {
      // Copy the string literal as is (escapes included).
      let j = i + 1
      while (j < pyJson.length && pyJson[j] !== '"') j += pyJson[j] === "\\" ? 2 : 1
      out += pyJson.slice(i, j + 1)
      i = j + 1
      continue
    }
    const word = /^(-?Infinity|NaN)/.exec(pyJson.slice(i, i + 9))
    if (word !== null) {
      out += `"${word[1]}"`
      i += word[1]!.length
      continue
    }
    out += c
    i++
  }
  return out
}

/** A stored value as strict JSON text (big integers stay exact; see `strictJson`). */
export const json = (value: unknown): string => (value === undefined ? "null" : strictJson(PyJson.encodeLossy(value)))

/** A stored value as Python shows it (`{'a': 1}`, `PaymentError('declined', 42)`). */
export const pretty = (value: unknown): string => PyJson.repr(value)

/** A TTL in seconds as `TTL` replies it: `-1` no expiry, `-2` no key. */
export const ttlText = (ttl: number): string =>
  ttl === -2 ? "no key" : ttl === -1 ? "no expiry" : `${durationText(ttl)} left`

/** `93784` → `1d 2h 3m 4s`. */
export const durationText = (seconds: number): string => {
  const s = Math.max(0, Math.floor(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const parts = [d > 0 ? `${d}d` : "", h > 0 ? `${h}h` : "", m > 0 ? `${m}m` : "", `${s % 60}s`].filter((p) => p !== "")
  return (d > 0 || h > 0 || m > 0) && s % 60 === 0 ? parts.slice(0, -1).join(" ") : parts.join(" ")
}

/** `1536` → `1.5 KiB`. */
export const bytesText = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1024 ** 3
        ? `${(n / 1024 ** 2).toFixed(1)} MiB`
        : `${(n / 1024 ** 3).toFixed(2)} GiB`

/** The TTL as JSON: seconds, or null (no expiry / no key; `stored` says which). */
const ttlJson = (ttl: number): string => (ttl < 0 ? "null" : String(ttl))

/** A task as one JSON line (`result get --json`, `wait --json`, `watch --json`). */
export const metaJson = (meta: TaskMeta, extra: { readonly ttl?: number | undefined } = {}): string =>
  jsonObject([
    ["task_id", JSON.stringify(meta.taskId)],
    ["state", JSON.stringify(meta.status)],
    ["ready", String(TaskState.isReady(meta.status))],
    ["result", json(meta.result)],
    ["date_done", JSON.stringify(meta.dateDone)],
    ["traceback", JSON.stringify(meta.traceback)],
    ...(meta.groupId !== undefined ? [["group_id", JSON.stringify(meta.groupId)] as const] : []),
    ...(meta.parentId !== undefined ? [["parent_id", JSON.stringify(meta.parentId)] as const] : []),
    ...(extra.ttl !== undefined
      ? [["stored", String(extra.ttl !== -2)] as const, ["ttl", ttlJson(extra.ttl)] as const]
      : [])
  ])

/** An undecodable value as one JSON line. */
export const decodeErrorJson = (error: DecodeError): string =>
  jsonObject([
    ["task_id", JSON.stringify(error.id)],
    ["state", JSON.stringify("UNDECODABLE")],
    ["error", JSON.stringify(error.message)],
    ["head", JSON.stringify(error.head)]
  ])

/** What a state change carries, in one short line: PROGRESS meta, RETRY/FAILURE exception, result. */
export const summary = (meta: TaskMeta, max = 120): string => {
  if (meta.status === TaskState.PENDING && meta.result === null) return ""
  const text = pretty(meta.result)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** The human block of `result get`. */
export const metaBlock = (
  meta: TaskMeta,
  options: { readonly ttl?: number | undefined; readonly traceback?: boolean | undefined }
): string => {
  const lines = [`${meta.taskId}  ${meta.status}`]
  const field = (name: string, value: string) => lines.push(`  ${(name + ":").padEnd(10)} ${value}`)
  if (!(meta.status === TaskState.PENDING && meta.result === null)) field("result", pretty(meta.result))
  if (meta.dateDone !== null) field("date_done", meta.dateDone)
  if (meta.groupId !== undefined) field("group", meta.groupId)
  if (meta.parentId !== undefined) field("parent", meta.parentId)
  if (meta.extended?.name != null) field("name", meta.extended.name)
  if (meta.extended?.worker != null) field("worker", meta.extended.worker)
  if (options.ttl !== undefined) field("ttl", ttlText(options.ttl))
  if (options.traceback === true && meta.traceback !== null) {
    lines.push("  traceback:")
    for (const l of meta.traceback.trimEnd().split("\n")) lines.push(`    ${l}`)
  }
  return lines.join("\n")
}
