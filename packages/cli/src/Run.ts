/**
 * Running a command against the store: resolve the connection, provide the backend, and turn
 * every typed error into one line on stderr (naming the server as Celery's `as_uri()` shows it,
 * password masked) and its exit code. Commands report their exit code through `Outcome`, since
 * `@effect/cli` handlers return nothing.
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import type * as RedisBackend from "@effect-celery/redis/RedisBackend"
import type { ConnectionArgs, Resolved } from "./Connection.js"
import { displayUri, resolve } from "./Connection.js"
import * as ExitCode from "./ExitCode.js"

/** The exit code the command settled on (default OK). */
export class Outcome extends Context.Tag("@effect-celery/cli/Outcome")<Outcome, Ref.Ref<number>>() {
  static readonly layer: Layer.Layer<Outcome> = Layer.effect(Outcome, Ref.make(ExitCode.OK))
}

/** Set the exit code of this run. */
export const exitWith = (code: number): Effect.Effect<void, never, Outcome> =>
  Effect.flatMap(Outcome, (ref) => Ref.set(ref, code))

/** The current exit code. */
export const exitCode: Effect.Effect<number, never, Outcome> = Effect.flatMap(Outcome, Ref.get)

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" ? u._tag : undefined

const field = (u: unknown, name: string): unknown =>
  typeof u === "object" && u !== null && name in u ? (u as Record<string, unknown>)[name] : undefined

/** A server message on one line, with the password cut out should a server ever echo it. */
const oneLine = (text: string, secret: string | undefined): string => {
  let line = text.replace(/\s+/g, " ").trim()
  // Shorter secrets would mangle ordinary words; they never reach a message we build anyway.
  if (secret !== undefined && secret.length >= 4) line = line.split(secret).join("**")
  return line
}

/** The line and exit code for a failure of a command run against `uri`. */
export const describe = (
  error: unknown,
  where: { readonly uri?: string | undefined; readonly secret?: string | undefined } = {}
): { readonly line: string; readonly code: number } => {
  const tag = tagOf(error) ?? "Error"
  const message = String(field(error, "message") ?? error)
  const at = where.uri !== undefined ? ` ${where.uri}` : ""
  switch (tag) {
    case "ImproperlyConfigured":
      return { line: `ImproperlyConfigured${at}: ${oneLine(message, where.secret)}`, code: ExitCode.USAGE }
    // An empty task or group id given on the command line: a bad argument.
    case "InvalidIdError":
      return { line: `InvalidIdError: ${oneLine(message, where.secret)}`, code: ExitCode.USAGE }
    case "ConnectionError":
      return {
        line: `ConnectionError(${String(field(error, "reason"))})${at}: ${oneLine(message, where.secret)}`,
        code: ExitCode.BACKEND
      }
    case "RetryLimitExceeded":
      return { line: `RetryLimitExceeded${at}: ${oneLine(message, where.secret)}`, code: ExitCode.BACKEND }
    case "CommandError":
      return {
        line: `CommandError${at}: ${String(field(error, "command"))}: ${oneLine(message, where.secret)}`,
        code: ExitCode.BACKEND
      }
    case "DecodeError":
      return {
        line: `DecodeError${at}: ${String(field(error, "id"))}: ${oneLine(message, where.secret)}`,
        code: ExitCode.BACKEND
      }
    case "TimeoutError":
      return { line: `TimeoutError${at}: ${oneLine(message, where.secret)}`, code: ExitCode.TIMEOUT }
    default:
      return { line: `${tag}${at}: ${oneLine(message, where.secret)}`, code: ExitCode.BACKEND }
  }
}

/** Print the one-line error and set its exit code. */
export const fail = (
  error: unknown,
  where: { readonly uri?: string | undefined; readonly secret?: string | undefined } = {}
): Effect.Effect<void, never, Outcome> =>
  Effect.suspend(() => {
    const { code, line } = describe(error, where)
    return Effect.zipRight(Console.error(`effect-celery: ${line}`), exitWith(code))
  })

/**
 * Resolve the connection, connect (eagerly: an unreachable server fails here), run `body` with the
 * backend services, and settle the exit code: `body`'s own, or the error's. The connections and
 * subscriptions are closed before this returns, interrupted (Ctrl-C) or not.
 */
export const withBackend = <E, R>(
  args: ConnectionArgs,
  body: (resolved: Resolved) => Effect.Effect<number, E, R | RedisBackend.Services>
): Effect.Effect<void, never, Outcome | Exclude<R, RedisBackend.Services>> =>
  resolve(args).pipe(
    Effect.matchEffect({
      onFailure: (error) => Effect.flatMap(displayUri(args), (uri) => fail(error, { uri })),
      onSuccess: (resolved) =>
        Effect.suspend(() => body(resolved)).pipe(
          Effect.provide(resolved.layer),
          Effect.matchEffect({
            onFailure: (error) => fail(error, { uri: resolved.uri, secret: resolved.secret }),
            onSuccess: exitWith
          })
        )
    })
  )
