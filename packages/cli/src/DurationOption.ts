/**
 * Durations on the command line: `500ms`, `30s`, `5m`, `2h`, `1d`, `1w`, combinations such as
 * `1h30m`, or a bare number of seconds (Celery settings count in seconds).
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

/** Parse a duration; none when the text is not one. */
export const parse = (text: string): Option.Option<Duration.Duration> => {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Option.some(Duration.millis(Number(t) * 1000))
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * (UNITS[m[2] ?? "s"] ?? 1000)
    matched = re.lastIndex
  }
  return matched === t.length && t.length > 0 ? Option.some(Duration.millis(total)) : Option.none()
}

/** A `--name <duration>` option. */
export const make = (name: string): Options.Options<Duration.Duration> =>
  Options.text(name).pipe(
    Options.withPseudoName("DURATION"),
    Options.mapEffect((text) =>
      Option.match(parse(text), {
        onNone: () =>
          Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name}: '${text}' is not a duration (e.g. 500ms, 30s, 5m, 2h, 1d)`)
            )
          ),
        onSome: Effect.succeed
      })
    )
  )
