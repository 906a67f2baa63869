/**
 * The node-redis side of `RedisClient`, kept off its public interface so that a driver upgrade
 * changes this package alone:
 * - `Driver`: raw access to the shared command connection and dedicated connections, for this
 *   package's subscriber (SUBSCRIBE needs a connection of its own and node-redis' Pub/Sub API) and
 *   for tests that must reach the socket. `RedisClient.make` attaches it under `DriverId`.
 * - `commandsOf`: `RedisClient.Commands` over one node-redis client, what a `RedisClient.batched`
 *   description sends through.
 * - `runScript`: EVALSHA with the NOSCRIPT fallback.
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import { ErrorReply } from "redis"
import type { Commands, RedisClient, Reply, Script } from "../RedisClient.js"
import type { NodeRedis } from "../RedisConnection.js"

/** The key of a `RedisClient`'s `Driver`. */
export const DriverId: unique symbol = Symbol.for("@effect-celery/redis/RedisClient/Driver")
export type DriverId = typeof DriverId

/** Raw node-redis access behind a `RedisClient` (not part of the public API). */
export interface Driver {
  /**
   * Run `f` on the shared command connection (connecting first if needed). A rejection or a throw
   * of `f` is typed as the client's commands are: a connection-level failure is a
   * `ConnectionError` and drops the connection, an error reply a `CommandError`.
   */
  readonly execute: <A>(
    command: string,
    f: (client: NodeRedis) => Promise<A>
  ) => Effect.Effect<A, ConnectionError | CommandError>
  /**
   * A new dedicated connection (for SUBSCRIBE), connected and ready, closed when the scope closes.
   * It never reconnects by itself: its owner sees `end` and asks for a new one.
   */
  readonly connect: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
  /**
   * Where channels are best subscribed, on a server of several nodes (a cluster); none on one
   * server, where `connect` serves every channel.
   */
  readonly placement?: Placement | undefined
}

/**
 * Channels spread over the subscriber connections of several parts, each channel in the part whose
 * connection receives its messages first (on a cluster: the master serving the channel's slot, where
 * the store PUBLISHes). Only a matter of speed: every part's connection receives every channel it
 * subscribes, wherever the PUBLISH ran.
 */
export interface Placement {
  /** How many parts there are; part 0 serves channels whose best node is not known. */
  readonly parts: number
  /** The shard of a channel (a cluster slot): channels of one shard are always placed together. */
  readonly shardOf: (channel: string) => number
  /**
   * The part serving `shard` best by what is known now (synchronous and cheap); `undefined` when
   * nothing is known yet (see `prepare`).
   */
  readonly partOf: (shard: number) => number | undefined
  /** Learn what `partOf` needs (on a cluster: the slot map). It may fail; then part 0 serves. */
  readonly prepare: Effect.Effect<void, unknown>
  /** A new dedicated connection for `part`, as `connect`. */
  readonly connect: (part: number) => Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
}

/** The driver behind `client`. */
export const driverOf = (client: RedisClient): Driver => client[DriverId]

const isNoScript = (cause: unknown): boolean => cause instanceof ErrorReply && cause.message.startsWith("NOSCRIPT")

/**
 * EVALSHA, and on NOSCRIPT (a fresh or flushed server) load the script and run it once more.
 * Runs inside the client's send path, which maps any rejection to a typed error.
 */
export const runScript = async (
  client: NodeRedis,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string>
): Promise<Reply> => {
  const options = { keys: [...keys], arguments: [...args] }
  try {
    return (await client.evalSha(script.sha, options)) as Reply
  } catch (cause) {
    if (!isNoScript(cause)) throw cause
    await client.scriptLoad(script.source)
    return (await client.evalSha(script.sha, options)) as Reply
  }
}

const adapters = new WeakMap<NodeRedis, Commands>()

/** `Commands` over one client, made once per client. */
export const commandsOf = (client: NodeRedis): Commands => {
  let commands = adapters.get(client)
  if (commands === undefined) {
    commands = {
      command: (args) => client.sendCommand<Reply>([...args]),
      get: (key) => client.get(key),
      mget: (keys) => client.mGet([...keys]),
      runScript: (script, keys, args) => runScript(client, script, keys, args)
    }
    adapters.set(client, commands)
  }
  return commands
}
