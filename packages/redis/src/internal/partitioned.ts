/**
 * The subscriber over a server of several nodes (a Redis Cluster): one `Subscriber` per part of the
 * driver's `Placement`, each with a connection of its own, and every channel subscribed in the part
 * the placement names for it: on a cluster, a connection to the master serving the channel's slot,
 * where the store PUBLISHes, so a message does not cross the cluster bus on its way to the watch. A
 * classic PUBLISH reaches every node, so a channel in a part whose node no longer serves its slot (a
 * failover, a reshard since) is still delivered, a little later: placement is a matter of speed,
 * never of correctness.
 *
 * - A sink whose channels all fall in one part (a `waitFor`, any watch in the single-slot layout) is
 *   added to that part's subscriber as it is: nothing in between.
 * - A sink whose channels span parts is split: a `Part` sink in each part, and a `Split` that
 *   presents their syncs to the sink as one. While any part syncs (a first sync, a resync after its
 *   connection was lost), every part's messages are held, each part's own from its sync's start on;
 *   when the last part's sync ends, the sink gets one sync: every part's read values, then every
 *   held message. Per channel that is the order a single connection would give: the read, then the
 *   messages (one channel is in one part only). A part's sync that starts again drops what that
 *   part held, as a sink does.
 * - A sink added before the placement knows anything (a watch before the client's first command)
 *   waits, unsubscribed, for `placement.prepare` (on a cluster: the slot map read); if that fails,
 *   part 0 takes it.
 * - The sink hears of a loss when the first of its parts loses its connection, and of the resync
 *   once every part is synced again.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { BackendError } from "@effect-celery/core/Errors"
import type { RedisClient } from "../RedisClient.js"
import type { Placement } from "./driver.js"
import * as Subscriber from "./subscriber.js"

/** One part of a split sink: the channels it holds in one part's subscriber. */
export class Part implements Subscriber.Sink {
  /** Messages held while any part of the split syncs, as channel, message pairs. */
  held: Array<string> = []
  /** This part's read values, once its sync ended, until the split's sync ends. */
  values: ReadonlyMap<string, string> | undefined
  syncing = true
  isLost = false
  private released: Set<string> | undefined

  constructor(
    private readonly split: Split,
    readonly subscriber: Subscriber.Subscriber,
    private readonly list: Array<string>
  ) {}

  channels(): ReadonlyArray<string> {
    const released = this.released
    return released === undefined ? this.list : this.list.filter((channel) => !released.has(channel))
  }

  release(channel: string): void {
    ;(this.released ??= new Set()).add(channel)
    this.subscriber.release(this, channel)
  }

  onMessage(channel: string, message: string): void {
    this.split.onMessage(this, channel, message)
  }

  beginSync(): void {
    this.split.beginSync(this)
  }

  endSync(values: ReadonlyMap<string, string>): void {
    this.split.endSync(this, values)
  }

  fail(cause: Cause.Cause<BackendError>): void {
    this.split.fail(cause)
  }

  lost(): void {
    this.split.lost(this)
  }

  resynced(): void {
    this.split.resynced(this)
  }
}

/** A sink split over parts, and what its parts' syncs have gathered so far. */
export class Split {
  /**
   * `sink` split over the parts of `byPart` (part → its channels, repeats allowed), `shards` telling
   * each shard's part; the parts are not added to their subscribers yet.
   */
  static over(
    sink: Subscriber.Sink,
    byPart: ReadonlyMap<number, ReadonlyArray<string>>,
    shards: ReadonlyMap<number, number>,
    subscribers: ReadonlyArray<Subscriber.Subscriber>,
    forget: (split: Split) => void
  ): Split {
    const split = new Split(sink, forget)
    const parts = new Map<number, Part>()
    for (const [part, list] of byPart) {
      // Each part lists its channels once; the sink's duplicates are what the lists dropped.
      const once = Array.from(new Set(list))
      split.unique += once.length
      const p = new Part(split, subscribers[part]!, once)
      parts.set(part, p)
      split.parts.push(p)
      split.syncing++
    }
    for (const [shard, part] of shards) split.byShard.set(shard, parts.get(part)!)
    return split
  }

  readonly parts: Array<Part> = []
  /** shard → the part holding its channels (a channel's shard never changes, its best part may). */
  readonly byShard = new Map<number, Part>()
  /** How many channels the parts hold in all. */
  unique = 0
  /** Parts whose sync is running (every part at first: the sink is buffering when added). */
  syncing = 0
  lostParts = 0
  /** A part's resync ended while another part was still syncing: tell the sink at the end. */
  resyncDue = false
  failed = false

  private constructor(
    readonly sink: Subscriber.Sink,
    private readonly forget: (split: Split) => void
  ) {}

  onMessage(part: Part, channel: string, message: string): void {
    if (this.syncing > 0) part.held.push(channel, message)
    else this.sink.onMessage(channel, message)
  }

  beginSync(part: Part): void {
    if (!part.syncing) {
      part.syncing = true
      this.syncing++
    }
    part.held = []
    part.values = undefined
  }

  endSync(part: Part, values: ReadonlyMap<string, string>): void {
    if (!part.syncing) return
    part.syncing = false
    part.values = values
    if (--this.syncing > 0 || this.failed) return
    const sink = this.sink
    // One sync of the sink: it buffers the held messages and merges them with the values.
    sink.beginSync()
    const merged = new Map<string, string>()
    for (const p of this.parts) {
      const read = p.values
      if (read !== undefined) {
        for (const channel of p.channels()) {
          const value = read.get(channel)
          if (value !== undefined) merged.set(channel, value)
        }
      }
      const held = p.held
      p.held = []
      p.values = undefined
      for (let i = 0; i < held.length; i += 2) sink.onMessage(held[i]!, held[i + 1]!)
    }
    sink.endSync(merged)
    if (this.resyncDue && this.lostParts === 0) {
      this.resyncDue = false
      sink.resynced?.()
    }
  }

  fail(cause: Cause.Cause<BackendError>): void {
    if (this.failed) return
    this.failed = true
    this.forget(this)
    for (const part of this.parts) part.subscriber.detach(part)
    this.sink.fail(cause)
  }

  lost(part: Part): void {
    if (part.isLost) return
    part.isLost = true
    if (this.lostParts++ === 0) this.sink.lost?.()
  }

  resynced(part: Part): void {
    if (!part.isLost) return
    part.isLost = false
    if (--this.lostParts > 0) return
    if (this.syncing === 0) this.sink.resynced?.()
    else this.resyncDue = true
  }
}

const PENDING = "pending"

/** A `Subscriber` over `placement.parts` subscribers, each connecting with `placement.connect`. */
export const make = (
  options: Subscriber.SubscriberOptions,
  placement: Placement
): Effect.Effect<Subscriber.Subscriber, never, RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const subscribers: Array<Subscriber.Subscriber> = []
    for (let part = 0; part < placement.parts; part++)
      subscribers.push(yield* Subscriber.make(options, placement.connect(part)))

    /** Where each sink went: a part's subscriber (its index), a split, or `pending` placement. */
    const placed = new Map<Subscriber.Sink, number | Split | typeof PENDING>()
    const forget = (split: Split) => {
      if (placed.get(split.sink) === split) placed.delete(split.sink)
    }

    // Sinks added before the placement knew anything, placed once `prepare` is done (or failed:
    // then part 0 takes what is still unknown). At shutdown they go to part 0 as they are, whose
    // own shutdown fails them.
    let pending: Array<Subscriber.Sink> = []
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let preparing: Fiber.RuntimeFiber<void> | undefined
    const placePending = () => {
      const sinks = pending
      pending = []
      for (const sink of sinks) {
        if (placed.get(sink) !== PENDING) continue
        placed.delete(sink)
        place(sink, 0)
      }
    }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const fiber = preparing
        preparing = undefined
        return Effect.zipRight(
          fiber === undefined ? Effect.void : Fiber.interrupt(fiber),
          Effect.sync(() => placePending())
        )
      })
    )

    const add = (sink: Subscriber.Sink): number => {
      const duplicates = place(sink, undefined)
      if (duplicates !== undefined) return duplicates
      placed.set(sink, PENDING)
      pending.push(sink)
      preparing ??= runFork(
        Effect.ignore(placement.prepare).pipe(
          Effect.zipRight(
            Effect.sync(() => {
              preparing = undefined
              placePending()
            })
          )
        )
      )
      const channels = sink.channels()
      return channels.length - new Set(channels).size
    }

    /**
     * Add the sink where its channels go, `unknown` for those the placement cannot tell; with
     * `unknown` undefined, nothing is added and the result is undefined when it cannot tell any.
     */
    const place = (sink: Subscriber.Sink, unknown: number | undefined): number | undefined => {
      const channels = sink.channels()
      let first: number | undefined
      let byPart: Map<number, Array<string>> | undefined
      let shards: Map<number, number> | undefined
      for (const channel of channels) {
        const shard = placement.shardOf(channel)
        let part = shards?.get(shard)
        if (part === undefined) {
          part = placement.partOf(shard) ?? unknown
          // Nothing known yet: the placement tells all channels or none.
          if (part === undefined) return undefined
          ;(shards ??= new Map()).set(shard, part)
        }
        first ??= part
        if (byPart === undefined) {
          if (part === first) continue
          // The first channel of a second part: every channel before it was in the first.
          byPart = new Map([[first, channels.slice(0, channels.indexOf(channel))]])
        }
        const list = byPart.get(part)
        if (list === undefined) byPart.set(part, [channel])
        else list.push(channel)
      }
      if (byPart === undefined) {
        const part = first ?? 0
        placed.set(sink, part)
        return subscribers[part]!.add(sink)
      }
      const split = Split.over(sink, byPart, shards!, subscribers, forget)
      placed.set(sink, split)
      for (const p of split.parts) {
        // A closed subscriber fails the part at once, which fails the split: add no more.
        if (split.failed) break
        p.subscriber.add(p)
      }
      return channels.length - split.unique
    }

    const release = (sink: Subscriber.Sink, channel: string): void => {
      const at = placed.get(sink)
      // A pending sink has had no message, so nothing to release.
      if (at === undefined || at === PENDING) return
      if (typeof at === "number") subscribers[at]!.release(sink, channel)
      else at.byShard.get(placement.shardOf(channel))?.release(channel)
    }

    const detach = (sink: Subscriber.Sink): void => {
      const at = placed.get(sink)
      if (at === undefined) return
      placed.delete(sink)
      if (typeof at === "number") subscribers[at]!.detach(sink)
      else if (at !== PENDING) for (const part of at.parts) part.subscriber.detach(part)
    }

    const remove = (sink: Subscriber.Sink): Effect.Effect<void> =>
      Effect.suspend(() => {
        const at = placed.get(sink)
        if (at === undefined) return Effect.void
        placed.delete(sink)
        if (at === PENDING) return Effect.void
        if (typeof at === "number") return subscribers[at]!.remove(sink)
        return Effect.forEach(at.parts, (part) => part.subscriber.remove(part), {
          concurrency: "unbounded",
          discard: true
        })
      })

    return { add, release, detach, remove }
  })
