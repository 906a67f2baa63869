/**
 * The Redis connection service shared by the backend, the consumer and Sentinel.
 *
 * STUB: the interface is fixed; `make` and the layers are implemented by the RedisClient work package.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import type { createClient } from "redis"

/** A node-redis v4 client as `createClient()` returns it. */
export type NodeRedis = ReturnType<typeof createClient>

export const TypeId: unique symbol = Symbol.for("@effect-celery/redis/RedisClient")
export type TypeId = typeof TypeId

export interface RedisClient {
  readonly [TypeId]: TypeId
  /** The server as Celery's `as_uri()` shows it: password masked, no query. */
  readonly uri: string
  /** The selected database. */
  readonly db: number
  /**
   * Run commands on the shared command connection. node-redis pipelines commands issued in the same
   * tick, so many fibers share it cheaply. A connection-level failure fails with `ConnectionError`
   * and drops the connection, so the next call reconnects (re-discovering the master under
   * Sentinel); an error reply fails with `CommandError` (a `READONLY` reply is a `ConnectionError`
   * with reason "ReadOnly"). Nothing is retried here: callers apply the retry policy.
   */
  readonly execute: <A>(command: string, f: (client: NodeRedis) => Promise<A>) => Effect.Effect<A, ConnectionError | CommandError>
  /**
   * A new dedicated connection (for SUBSCRIBE), connected and ready, closed when the scope closes.
   * It never reconnects by itself: its owner sees `end` and asks for a new one.
   */
  readonly connect: Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
}

export const RedisClient: Context.Tag<RedisClient, RedisClient> = Context.GenericTag<RedisClient>(
  "@effect-celery/redis/RedisClient"
)
