/**
 * The README's "Tracing and metrics" tables name every span, span event, attribute and metric the
 * code defines (core's Telemetry and Sentinel's), so the docs cannot fall behind the code. Here
 * because this package sees both.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Telemetry from "@effect-celery/core/Telemetry"
import { Sentinel } from "@effect-celery/sentinel"

const readme = Fs.readFileSync(Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../../../README.md"), "utf8")
const section = readme.slice(
  readme.indexOf("## Tracing and metrics"),
  readme.indexOf("\n## ", readme.indexOf("## Tracing and metrics") + 1)
)

/** Backquoted names in the section. */
const documented = new Set(Array.from(section.matchAll(/`([a-zA-Z_.]+)`/g), (m) => m[1]!))

const isMetric = (value: unknown): value is Metric.Metric<unknown, unknown, unknown> =>
  typeof value === "object" || typeof value === "function" ? value !== null && Metric.MetricTypeId in value : false

describe("README: Tracing and metrics", () => {
  it.effect("names every span, event and attribute of Telemetry and Sentinel", () =>
    Effect.sync(() => {
      // The attributes the spans carry (the retry ones label metrics only; `retries` is unused).
      const attributes = Object.entries(Telemetry.Attr)
        .filter(([key]) => key !== "retries")
        .map(([, name]) => name)
      const names = [
        ...Object.values(Telemetry.SpanName),
        ...Object.values(Telemetry.EventName),
        ...attributes,
        ...Object.values(Sentinel.MetricAttr),
        "RedisClient.connect",
        "Sentinel.discover"
      ]
      const missing = names.filter((name) => !documented.has(name))
      assert.deepStrictEqual(missing, [], "add these to the README's Tracing and metrics tables")
    })
  )

  it.effect("names every metric of Telemetry and Sentinel", () =>
    Effect.gen(function* () {
      for (const value of [...Object.values(Telemetry), ...Object.values(Sentinel)] as Array<unknown>) {
        if (isMetric(value)) value.register()
      }
      const names = (yield* Metric.snapshot)
        .map((pair) => pair.metricKey.name)
        .filter((name) => name.startsWith("celery.") || name.startsWith("db.client."))
      assert.isAtLeast(names.length, 12)
      const missing = [...new Set(names)].filter((name) => !documented.has(name))
      assert.deepStrictEqual(missing, [], "add these to the README's metrics table")
    })
  )
})
