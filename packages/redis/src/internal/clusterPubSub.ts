/**
 * The subscriber connections of a cluster `RedisClient` (`RedisClusterBackend`): where each part of
 * the consumer's `Placement` connects, and when every one of them is replaced.
 *
 * - Placement: a channel's shard is its key's slot. The master node-redis' slot map (the command
 *   side's, as last read) gives for that slot is bound to a part the first time it is seen, with
 *   that slot; the part's connections go to the master serving the slot at the time (after a
 *   failover, the promoted replica, which takes the part over), the slot map read again first
 *   when the command side has none (after a topology change). With no slot map yet (a watch
 *   before the first command), `prepare` opens the command side's cluster object, which reads it.
 *   Part 0 serves the channels of masters beyond the parts (and any when the slot map cannot be
 *   read) and connects to the root nodes in turn, as does a part whose master cannot be reached
 *   (during a failover, until the slot map shows the promoted replica): the channels are still
 *   delivered, over the cluster bus.
 * - Topology: every failover and slot handover increases the cluster's `cluster_current_epoch`.
 *   Each connection reads it as it opens; while any is open it is polled every
 *   `topologyCheckInterval`, and a higher one replaces every open subscriber connection (each part
 *   reconnects and resyncs: a publication lost with a dead master is made up by the read) and drops
 *   the command side's cluster object, so the slot map is read again.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import type { NodeRedis } from "../RedisConnection.js"
import { destroy } from "../RedisConnection.js"
import type { NodeRedisCluster, RootNode } from "./cluster.js"
import { slotOf } from "./cluster.js"
import type { Placement } from "./driver.js"
import { connectError } from "./errors.js"

/**
 * Parts of the consumer's subscriber: one per master up to this many less one (part 0 serves the
 * rest). An unused part holds no connection, only its idle driver fiber.
 */
export const PARTS = 16

export interface Options {
  readonly rootNodes: ReadonlyArray<RootNode>
  /** Named in the error when no node can be reached. */
  readonly uri: string
  /** A dedicated connection to one node, connected and ready. */
  readonly connectTo: (node: RootNode) => Effect.Effect<NodeRedis, ConnectionError, Scope.Scope>
  /** The command side's cluster object, when one is open: its slot map places the channels. */
  readonly cluster: () => NodeRedisCluster | undefined
  /** Open the command side's cluster object (the slot map read). */
  readonly prepare: Effect.Effect<void, ConnectionError>
  readonly readEpoch: Effect.Effect<number, ConnectionError | CommandError>
  /** The topology changed: the command side reads the slot map again. */
  readonly onTopologyChange: Effect.Effect<void>
  readonly topologyCheckInterval: Duration.Duration
}

const addressOf = (node: RootNode) => `${node.host}:${node.port}`

/** The placement of the cluster's channels; its poll runs in the scope (the client's). */
export const make = (options: Options): Effect.Effect<Placement, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const { rootNodes } = options

    // Part n (n ≥ 1) follows the slot that first bound it: its connections go to whichever master
    // serves that slot now (after a failover, the promoted replica), else to the node it was
    // bound to. `parts`: a master's address → its part.
    const bound: Array<{ readonly slot: number; readonly node: RootNode }> = []
    const parts = new Map<string, number>()

    const partOf = (slot: number): number | undefined => {
      const cluster = options.cluster()
      if (cluster === undefined) return undefined
      const master = cluster.slots[slot]?.master
      if (master === undefined) return 0
      let part = parts.get(master.address)
      if (part === undefined) {
        // A master now serving the slot of a part bound to another (failed over to it): that part.
        for (let i = 0; i < bound.length && part === undefined; i++)
          if (cluster.slots[bound[i]!.slot]?.master.address === master.address) part = i + 1
        if (part === undefined) {
          if (bound.length >= PARTS - 1) return 0
          bound.push({ slot, node: { host: master.host, port: master.port } })
          part = bound.length
        }
        parts.set(master.address, part)
      }
      return part
    }

    /** Where part n connects first: its slot's master by the slot map now, else its first node. */
    const nodeOf = (part: number): RootNode | undefined => {
      const b = part > 0 ? bound[part - 1] : undefined
      if (b === undefined) return undefined
      const master = options.cluster()?.slots[b.slot]?.master
      return master === undefined ? b.node : { host: master.host, port: master.port }
    }

    // --- topology -------------------------------------------------------------------------------

    // The cluster's epoch as last seen: a higher one is a topology change.
    let epoch = -1
    const open = new Set<NodeRedis>()
    let polling = false
    // Checked and cleared in one step: a connection opened after it starts a new poll.
    const done = Effect.sync(() => {
      if (open.size > 0) return false
      polling = false
      return true
    })
    const poll = Effect.gen(function* () {
      while (true) {
        yield* Effect.sleep(options.topologyCheckInterval)
        if (yield* done) return
        const now = yield* Effect.either(options.readEpoch)
        if (Either.isLeft(now) || now.right <= epoch) continue
        epoch = now.right
        yield* Effect.logInfo(`Cluster topology changed (epoch ${now.right}): resyncing the subscriber`)
        yield* options.onTopologyChange
        for (const client of open) destroy(client)
      }
    }).pipe(Effect.interruptible)

    // --- connections ----------------------------------------------------------------------------

    let nextRoot = 0
    /** The part's node first (when bound), then the root nodes from a rotating start. */
    const candidates = (part: number): Array<RootNode> => {
      const start = nextRoot++ % rootNodes.length
      const rotation = rootNodes.map((_, i) => rootNodes[(start + i) % rootNodes.length]!)
      const node = nodeOf(part)
      if (node === undefined) return rotation
      const address = addressOf(node)
      return [node, ...rotation.filter((n) => addressOf(n) !== address)]
    }

    const connect = (part: number): Effect.Effect<NodeRedis, ConnectionError, Scope.Scope> =>
      Effect.gen(function* () {
        // After a topology change the command side is dropped: read the slot map again first, so
        // the part goes to its slot's master now (a failed read leaves the node it was bound to).
        if (part > 0 && options.cluster() === undefined) yield* Effect.ignore(options.prepare)
        let last: ConnectionError | undefined
        for (const node of candidates(part)) {
          const nodeScope = yield* Scope.make()
          const attempt = yield* Effect.either(Scope.extend(options.connectTo(node), nodeScope))
          if (Either.isLeft(attempt)) {
            yield* Scope.close(nodeScope, Exit.void)
            last = attempt.left
            continue
          }
          const client = attempt.right
          yield* Effect.addFinalizer(() =>
            Effect.zipRight(
              Effect.sync(() => open.delete(client)),
              Scope.close(nodeScope, Exit.void)
            )
          )
          // The epoch now, before the sync reads: a change after it is seen by the poll.
          const seen = yield* Effect.either(options.readEpoch)
          if (Either.isRight(seen)) epoch = Math.max(epoch, seen.right)
          open.add(client)
          if (!polling) {
            polling = true
            yield* Effect.forkIn(poll, scope)
          }
          return client
        }
        return yield* Effect.fail(last ?? connectError(options.uri, new Error("no root node")))
      })

    return { parts: PARTS, shardOf: slotOf, partOf, prepare: options.prepare, connect }
  })
