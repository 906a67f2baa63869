/**
 * The subscriber's routing state, with no I/O and no Effect: which sinks hold which channels, what
 * must be SUBSCRIBEd (sinks waiting for their first sync) and UNSUBSCRIBEd (channels whose last
 * sink left), and the count of releases requested and acknowledged that `remove` waits on.
 *
 * - A channel maps to its one sink, or to an array when several hold it (most channels have one:
 *   no array for them). Its keys are exactly the channels the subscriber wants subscribed.
 * - A release of a channel's last sink queues its UNSUBSCRIBE only when `canUnsubscribe()` says a
 *   live connection exists: without one there is nothing to unsubscribe, the next connection
 *   subscribes only what is routed.
 * - Releases are counted: `requested` grows with each queued UNSUBSCRIBE, `done` moves up when the
 *   driver reports an acknowledgement (or that the connection is gone, which releases everything).
 *   A waiter registered at `requested = n` is called once `done >= n`.
 *
 * The driver in `subscriber.ts` owns the connection and calls `takeUnsubscribes` / `takeSyncs`
 * between steps; everything else (add, release, detach, delivery) can happen at any time.
 *
 * @internal
 */

/** What the table needs of a sink: the channels it still holds. */
export interface Routed {
  readonly channels: () => ReadonlyArray<string>
}

/** The UNSUBSCRIBE a step sends, and the release count it settles once acknowledged. */
export interface Unsubscribes {
  readonly channels: ReadonlyArray<string>
  readonly target: number
}

/** The sinks whose first sync a step runs, and the channels they hold (each once). */
export interface Syncs<S> {
  readonly sinks: ReadonlyArray<S>
  readonly channels: ReadonlyArray<string>
}

export class RouteTable<S extends Routed> {
  /** channel → the sink(s) holding it. */
  private readonly routes = new Map<string, S | Array<S>>()
  private readonly sinks = new Set<S>()
  /** Sinks waiting for their first sync. */
  private pendingSync = new Set<S>()
  /** Channels whose last sink left (some may have been routed again since). */
  private pendingUnsubscribe = new Set<string>()
  private releasesRequested = 0
  private releasesDone = 0
  private releaseWaiters: Array<{ readonly target: number; readonly done: () => void }> = []

  /** `canUnsubscribe`: whether a live connection exists to send an UNSUBSCRIBE on. */
  constructor(private readonly canUnsubscribe: () => boolean) {}

  /** Channels routed (= wanted subscribed). */
  get channelCount(): number {
    return this.routes.size
  }

  /** Sinks added and not yet detached. */
  get sinkCount(): number {
    return this.sinks.size
  }

  has(sink: S): boolean {
    return this.sinks.has(sink)
  }

  /** Every sink present, in the order added. */
  allSinks(): Array<S> {
    return Array.from(this.sinks)
  }

  /** Every routed channel (for a resync). */
  channels(): Array<string> {
    return Array.from(this.routes.keys())
  }

  /** Work for the driver's next step: a sync or an UNSUBSCRIBE. */
  hasPending(): boolean {
    return this.pendingUnsubscribe.size > 0 || this.pendingSync.size > 0
  }

  /**
   * Route the sink's channels to it and queue its first sync. Returns how many of the channels it
   * lists were listed before (duplicates, routed once).
   */
  add(sink: S): number {
    this.sinks.add(sink)
    let duplicates = 0
    for (const channel of sink.channels()) if (!this.route(sink, channel)) duplicates++
    this.pendingSync.add(sink)
    return duplicates
  }

  /**
   * Call `f` for each sink `channel` is routed to (none if unrouted). Several sinks are called from
   * a copy: one that releases the channel while being called does not make the next one skipped.
   */
  forEachRoute(channel: string, message: string, f: (sink: S, channel: string, message: string) => void): void {
    const route = this.routes.get(channel)
    if (route === undefined) return
    if (Array.isArray(route)) {
      for (const sink of route.slice()) f(sink, channel, message)
    } else {
      f(route, channel, message)
    }
  }

  /** Stop routing `channel` to `sink`. True when that queued an UNSUBSCRIBE (the driver has work). */
  release(sink: S, channel: string): boolean {
    const current = this.routes.get(channel)
    if (current === undefined) return false
    if (Array.isArray(current)) {
      const i = current.indexOf(sink)
      if (i === -1) return false
      current.splice(i, 1)
      if (current.length === 1) this.routes.set(channel, current[0]!)
      return false
    }
    if (current !== sink) return false
    this.routes.delete(channel)
    if (!this.canUnsubscribe()) return false
    this.pendingUnsubscribe.add(channel)
    this.releasesRequested++
    return true
  }

  /** Forget the sink and release everything it holds. True when an UNSUBSCRIBE was queued. */
  detach(sink: S): boolean {
    if (!this.sinks.delete(sink)) return false
    this.pendingSync.delete(sink)
    let queued = false
    for (const channel of sink.channels()) if (this.release(sink, channel)) queued = true
    return queued
  }

  /**
   * The queued UNSUBSCRIBE, emptied (undefined if none is queued): the channels still unrouted that
   * the connection has subscribed (`subscribed`), and the release count that settles once the
   * server acknowledges them.
   */
  takeUnsubscribes(subscribed: (channel: string) => boolean): Unsubscribes | undefined {
    if (this.pendingUnsubscribe.size === 0) return undefined
    const channels: Array<string> = []
    for (const channel of this.pendingUnsubscribe) {
      if (!this.routes.has(channel) && subscribed(channel)) channels.push(channel)
    }
    this.pendingUnsubscribe = new Set()
    return { channels, target: this.releasesRequested }
  }

  /**
   * The queued first syncs, emptied (undefined if none is queued): the sinks still present and
   * their channels, each once.
   */
  takeSyncs(): Syncs<S> | undefined {
    if (this.pendingSync.size === 0) return undefined
    const sinks: Array<S> = []
    for (const sink of this.pendingSync) if (this.sinks.has(sink)) sinks.push(sink)
    this.pendingSync = new Set()
    if (sinks.length === 1) return { sinks, channels: sinks[0]!.channels() }
    const all = new Set<string>()
    for (const sink of sinks) for (const channel of sink.channels()) all.add(channel)
    return { sinks, channels: Array.from(all) }
  }

  /**
   * A fresh connection is being made: every sink is to be synced on it, so queued first syncs and
   * UNSUBSCRIBEs are moot and every release counts as done. Returns every sink.
   */
  beginResync(): Array<S> {
    const all = Array.from(this.sinks)
    this.pendingSync = new Set()
    this.dropUnsubscribes()
    return all
  }

  /** The connection is gone: nothing queued is to be unsubscribed, every release counts as done. */
  dropUnsubscribes(): void {
    this.pendingUnsubscribe = new Set()
    this.settleReleases()
  }

  /** Everything removed (a give-up, a shutdown); returns the sinks that were present, to be failed. */
  clear(): Array<S> {
    const all = Array.from(this.sinks)
    this.routes.clear()
    this.sinks.clear()
    this.pendingSync = new Set()
    this.dropUnsubscribes()
    return all
  }

  /** Releases acknowledged up to `upTo` (default: every one requested so far); due waiters are called. */
  settleReleases(upTo: number = this.releasesRequested): void {
    if (upTo > this.releasesDone) this.releasesDone = upTo
    if (this.releaseWaiters.length === 0) return
    const still: typeof this.releaseWaiters = []
    const due: Array<() => void> = []
    for (const w of this.releaseWaiters) {
      if (w.target <= this.releasesDone) due.push(w.done)
      else still.push(w)
    }
    this.releaseWaiters = still
    for (const done of due) done()
  }

  /** Every release requested so far is acknowledged. */
  releasesSettled(): boolean {
    return this.releasesDone >= this.releasesRequested
  }

  /** Call `done` once every release requested so far is acknowledged (at once if they are). */
  whenReleased(done: () => void): void {
    if (this.releasesSettled()) return done()
    this.releaseWaiters.push({ target: this.releasesRequested, done })
  }

  /** Route `channel` to `sink`; false if it already was (the sink lists it twice). */
  private route(sink: S, channel: string): boolean {
    const current = this.routes.get(channel)
    if (current === undefined) this.routes.set(channel, sink)
    else if (Array.isArray(current)) {
      if (current.includes(sink)) return false
      current.push(sink)
    } else if (current === sink) return false
    else this.routes.set(channel, [current, sink])
    return true
  }
}
