/**
 * The store-wide commands the result backend has no use for (SCAN, TTL, MEMORY USAGE, INFO,
 * PUBSUB, EXPIRE…), over the library's `RedisClient.command`. This is the only module of the CLI
 * that sends commands: every command goes through `send` (or `sendAll`) as an argument list.
 *
 * Nothing here is retried: an operator command fails fast with the typed error and its exit code.
 */
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import { RedisClient } from "@effect-celery/redis/RedisClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

export type AdminError = ConnectionError | CommandError

/** One raw reply, as `RedisClient.command` hands it back (strings, numbers, arrays, null). */
type Reply = unknown

/** Keys asked in one pipelined round (bounds the request and the replies held at once). */
export const BATCH = 1000

/** Send one command on the shared command connection. */
const send = (args: ReadonlyArray<string>): Effect.Effect<Reply, AdminError, RedisClient> =>
  Effect.flatMap(RedisClient, (client) => client.command(args))

/**
 * Many commands in one round trip: `RedisClient.commands` sends them in one write, so the
 * replies come back together (one command's error reply fails the whole call).
 */
const sendAll = (
  commands: ReadonlyArray<ReadonlyArray<string>>
): Effect.Effect<ReadonlyArray<Reply>, AdminError, RedisClient> =>
  Effect.flatMap(RedisClient, (client) => client.commands(commands))

const asString = (r: Reply): string | null =>
  typeof r === "string"
    ? r
    : Buffer.isBuffer(r)
      ? r.toString("utf8")
      : typeof r === "number" || typeof r === "bigint"
        ? String(r)
        : null

const asNumber = (r: Reply): number => (typeof r === "number" ? r : Number(asString(r) ?? Number.NaN))

const asArray = (r: Reply): ReadonlyArray<Reply> => (Array.isArray(r) ? r : [])

/** A SCAN / PUBSUB CHANNELS pattern that matches `prefix` literally, then anything. */
export const prefixPattern = (prefix: string): string => `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`

/**
 * Every key matching `pattern`, in batches as SCAN returns them (never KEYS, which blocks the
 * server). A key may come twice when the keyspace is rehashed during the scan, as SCAN documents.
 */
export const scan = (pattern: string, count = BATCH): Stream.Stream<ReadonlyArray<string>, AdminError, RedisClient> =>
  Stream.paginateChunkEffect("0", (cursor) =>
    Effect.map(send(["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)]), (reply) => {
      const [next, keys] = asArray(reply)
      const nextCursor = asString(next) ?? "0"
      const batch = asArray(keys).map((k) => asString(k) ?? "")
      return [Chunk.of(batch), nextCursor === "0" ? Option.none() : Option.some(nextCursor)] as const
    })
  ).pipe(Stream.filter((batch) => batch.length > 0))

/** `MGET` of the keys (a key holding a non-string reads as null). */
export const mget = (
  keys: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<string | null>, AdminError, RedisClient> =>
  keys.length === 0 ? Effect.succeed([]) : Effect.map(send(["MGET", ...keys]), (r) => asArray(r).map(asString))

/** `GET`. */
export const get = (key: string): Effect.Effect<string | null, AdminError, RedisClient> =>
  Effect.map(send(["GET", key]), asString)

/** `TTL` of each key in seconds: -1 without expiry, -2 when missing. */
export const ttls = (keys: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<number>, AdminError, RedisClient> =>
  Effect.map(sendAll(keys.map((k) => ["TTL", k])), (rs) => rs.map(asNumber))

/** `TTL` of one key (-1 without expiry, -2 when missing). */
export const ttl = (key: string): Effect.Effect<number, AdminError, RedisClient> =>
  Effect.map(send(["TTL", key]), asNumber)

/** `TYPE` ("string", "zset", "list", "none"…). */
export const type = (key: string): Effect.Effect<string, AdminError, RedisClient> =>
  Effect.map(send(["TYPE", key]), (r) => asString(r) ?? "none")

/** `OBJECT ENCODING` (null when missing). */
export const encoding = (key: string): Effect.Effect<string | null, AdminError, RedisClient> =>
  Effect.map(send(["OBJECT", "ENCODING", key]), asString)

/** `MEMORY USAGE` of each key in bytes (null when missing). */
export const memoryUsage = (
  keys: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<number | null>, AdminError, RedisClient> =>
  Effect.map(sendAll(keys.map((k) => ["MEMORY", "USAGE", k])), (rs) => rs.map((r) => (r === null ? null : asNumber(r))))

/** `INFO <section>` as a map of its `field:value` lines. */
export const info = (section: string): Effect.Effect<ReadonlyMap<string, string>, AdminError, RedisClient> =>
  Effect.map(send(["INFO", section]), (r) => {
    const fields = new Map<string, string>()
    for (const line of (asString(r) ?? "").split(/\r?\n/)) {
      const colon = line.indexOf(":")
      if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1))
    }
    return fields
  })

/** `PUBSUB CHANNELS <pattern>`: channels with at least one subscriber. */
export const pubsubChannels = (pattern: string): Effect.Effect<ReadonlyArray<string>, AdminError, RedisClient> =>
  Effect.map(send(["PUBSUB", "CHANNELS", pattern]), (r) => asArray(r).map((c) => asString(c) ?? ""))

/** `PUBSUB NUMSUB`: subscribers per channel. */
export const pubsubNumsub = (
  channels: ReadonlyArray<string>
): Effect.Effect<ReadonlyMap<string, number>, AdminError, RedisClient> =>
  channels.length === 0
    ? Effect.succeed(new Map())
    : Effect.map(send(["PUBSUB", "NUMSUB", ...channels]), (r) => {
        const flat = asArray(r)
        const counts = new Map<string, number>()
        for (let i = 0; i + 1 < flat.length; i += 2) counts.set(asString(flat[i]) ?? "", asNumber(flat[i + 1]))
        return counts
      })

/** `EXPIRE key seconds` for each key; how many got the TTL (a key gone meanwhile does not). */
export const expire = (keys: ReadonlyArray<string>, seconds: number): Effect.Effect<number, AdminError, RedisClient> =>
  Effect.map(
    sendAll(keys.map((k) => ["EXPIRE", k, String(seconds)])),
    (rs) => rs.filter((r) => asNumber(r) === 1).length
  )

/** The members of a chord join key (`.j`): a ZSET in index order, or a LIST in arrival order. */
export const chordMembers = (key: string): Effect.Effect<ReadonlyArray<string>, AdminError, RedisClient> =>
  Effect.flatMap(type(key), (t) =>
    t === "zset"
      ? Effect.map(send(["ZRANGE", key, "0", "-1"]), (r) => asArray(r).map((m) => asString(m) ?? ""))
      : t === "list"
        ? Effect.map(send(["LRANGE", key, "0", "-1"]), (r) => asArray(r).map((m) => asString(m) ?? ""))
        : Effect.succeed([])
  )
