/** Small helpers shared by the redis package tests. */
import { assert } from "@effect/vitest"
import type { Scope } from "effect"
import { Cause, Deferred, Effect, Exit, Layer, Logger, Option } from "effect"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import { RedisClient } from "@effect-celery/redis"

/**
 * The `RedisClient` of a layer, built in the current scope and connected: the layer connects on
 * first use, so a first PING opens the command connection (and fails as the connect does).
 */
export const build = <E>(
  layer: Layer.Layer<RedisClient.RedisClient, E>
): Effect.Effect<RedisClient.RedisClient, E | ConnectionError | CommandError, Scope.Scope> =>
  Layer.build(layer).pipe(
    Effect.map((ctx) => ctx.unsafeMap.get(RedisClient.RedisClient.key) as RedisClient.RedisClient),
    Effect.tap((client) => client.command(["PING"]))
  )

/** The typed error of a failed Exit; the test fails on a success or a defect. */
export const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) return assert.fail(`expected a failure, got ${String(exit.value)}`)
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) return assert.fail(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

/** Run `effect` and return the typed error it fails with (see `failure`). */
export const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.map(Effect.exit(effect), failure)

let seq = 0
/** A task id unique to this process and call, readable in a server dump. */
export const uid = (name: string): string => `${name}-${process.pid}-${Date.now().toString(36)}-${seq++}`

/** Every log message, and a Deferred completed by the first one containing `signal`. */
export const capturingLogs = (signal: string) =>
  Effect.gen(function* () {
    const seen = yield* Deferred.make<void>()
    const messages: Array<string> = []
    const logger = Logger.make(({ message }) => {
      const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
      messages.push(text)
      if (text.includes(signal)) Deferred.unsafeDone(seen, Exit.void)
    })
    return { messages, seen, layer: Logger.replace(Logger.defaultLogger, logger) }
  })
