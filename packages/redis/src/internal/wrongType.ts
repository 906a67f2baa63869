/**
 * One rule for a task key that holds a non-string (a hash, a list… written by something else):
 * every read (`get`, `getMany`, `getAll`, `waitFor`, `watch`) reports it as a `DecodeError` naming
 * the task and the Redis type, as it reports stored bytes that are not a Celery meta. MGET (used by
 * batched gets, `getMany`/`getAll` and the subscriber's resync) reads such a key as missing, so a
 * key that reads as missing is checked with `Scripts.nonString` (a second round trip, only for
 * keys that read as missing); a lone GET answers WRONGTYPE, which is checked the same way.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import { DecodeError } from "@effect-celery/core/Errors"
import type { RedisClient } from "../RedisClient.js"
import { MGET_CHUNK } from "../RedisClient.js"
import * as Scripts from "./scripts.js"

/** The error for a task whose key holds a `type` other than a string. */
export const wrongType = (taskId: string, key: string, type: string): DecodeError =>
  new DecodeError({
    id: taskId,
    head: `<${type}>`,
    message: `${key} holds a Redis ${type}, not a Celery result (a string): the task's result cannot be read (WRONGTYPE)`
  })

/** Whether a command failed because its key holds the wrong kind of value. */
export const isWrongTypeReply = (error: ConnectionError | CommandError): boolean =>
  error._tag === "CommandError" && error.message.startsWith("WRONGTYPE")

const repliesOf = (reply: unknown): ReadonlyArray<string> =>
  Array.isArray(reply) ? reply.map((r) => (typeof r === "string" ? r : "")) : []

/** The non-string types of `keys`, in order ("" for a string or a missing key); no keys, no command. */
export const typesOf = (
  client: RedisClient,
  keys: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<string>, ConnectionError | CommandError> =>
  keys.length === 0
    ? Effect.succeed([])
    : Effect.map(
        client.runScript(
          Scripts.nonString,
          keys,
          keys.map(() => "")
        ),
        repliesOf
      )

/**
 * The same check for one key, coalesced across fibers: the checks issued in one tick go out as one
 * script call.
 */
export const typeOfBatched = (
  client: RedisClient
): ((key: string) => Effect.Effect<string, ConnectionError | CommandError>) =>
  client.batched<string, string>({
    command: "EVALSHA",
    maxBatch: MGET_CHUNK,
    one: (c, key) => c.runScript(Scripts.nonString, [key], [""]).then((reply) => repliesOf(reply)[0] ?? ""),
    many: (c, keys) =>
      c
        .runScript(
          Scripts.nonString,
          keys,
          keys.map(() => "")
        )
        .then(repliesOf),
    outcome: Either.right
  })
