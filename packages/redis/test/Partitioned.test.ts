/**
 * The split of one sink over several parts' subscribers (a watch of keys on several cluster
 * masters), on its own, no server: the parts' syncs reach the sink as one sync (every part's
 * values, then the messages held while any part synced, each channel's in order), a part whose
 * sync starts again drops what it held, the sink hears of a loss once and of the resync when every
 * part is synced, and a part's failure fails the sink once and takes the other parts out.
 * (`ClusterFaults` runs the same on a real cluster: a split watch through a master's failover.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect } from "effect"
import { ConnectionError } from "@effect-celery/core/Errors"
import type { Part } from "../src/internal/partitioned.js"
import { Split } from "../src/internal/partitioned.js"
import type * as Subscriber from "../src/internal/subscriber.js"

/** A sink recording every call, as a watch holding `held` sees them. */
class RecordingSink implements Subscriber.Sink {
  readonly calls: Array<string> = []
  constructor(private readonly held: ReadonlyArray<string>) {}
  channels = () => this.held
  onMessage = (channel: string, message: string) => void this.calls.push(`message ${channel}=${message}`)
  beginSync = () => void this.calls.push("beginSync")
  endSync = (values: ReadonlyMap<string, string>) =>
    void this.calls.push(
      `endSync ${Array.from(values, ([k, v]) => `${k}=${v}`)
        .sort()
        .join(",")}`
    )
  fail = (cause: Cause.Cause<unknown>) => void this.calls.push(`fail ${Cause.pretty(cause).split("\n")[0]}`)
  lost = () => void this.calls.push("lost")
  resynced = () => void this.calls.push("resynced")
}

/** A part's subscriber that records what is released and detached. */
const recordingSubscriber = (name: string, log: Array<string>): Subscriber.Subscriber => ({
  add: () => 0,
  release: (_, channel) => void log.push(`${name} release ${channel}`),
  detach: () => void log.push(`${name} detach`),
  remove: () => Effect.void
})

/** `a1`, `a2` (shard 1) in part 1 and `b1` (shard 2) in part 2; `a1` listed twice. */
const setup = () => {
  const sink = new RecordingSink(["a1", "b1", "a2", "a1"])
  const log: Array<string> = []
  const subscribers = [
    recordingSubscriber("part0", log),
    recordingSubscriber("part1", log),
    recordingSubscriber("part2", log)
  ]
  const forgotten: Array<Split> = []
  const split = Split.over(
    sink,
    new Map([
      [1, ["a1", "a2", "a1"]],
      [2, ["b1"]]
    ]),
    new Map([
      [1, 1],
      [2, 2]
    ]),
    subscribers,
    (s) => void forgotten.push(s)
  )
  const [a, b] = split.parts as [Part, Part]
  return { sink, log, split, a, b, forgotten }
}

/** `setup`, both parts' first syncs ended and the sink's record cleared. */
const synced = () => {
  const s = setup()
  s.a.endSync(new Map())
  s.b.endSync(new Map())
  s.sink.calls.length = 0
  return s
}

describe("Partitioned: a sink split over parts", () => {
  it.effect("each part lists its channels once; the sink's duplicates are counted", () =>
    Effect.sync(() => {
      const { a, b, split } = setup()
      assert.deepStrictEqual(a.channels(), ["a1", "a2"])
      assert.deepStrictEqual(b.channels(), ["b1"])
      assert.strictEqual(split.unique, 3)
    })
  )

  it.effect(
    "the parts' first syncs reach the sink as one: every part's values, then what was held while any part synced, in order",
    () =>
      Effect.sync(() => {
        const { a, b, sink } = setup()
        a.onMessage("a1", "m1")
        a.endSync(
          new Map([
            ["a1", "v0"],
            ["a2", "w"],
            ["other", "not the sink's"]
          ])
        )
        assert.deepStrictEqual(sink.calls, [], "nothing before the last part is synced")
        a.onMessage("a1", "m2")
        b.onMessage("b1", "n1")
        b.endSync(new Map([["b1", "u"]]))
        assert.deepStrictEqual(sink.calls, [
          "beginSync",
          "message a1=m1",
          "message a1=m2",
          "message b1=n1",
          "endSync a1=v0,a2=w,b1=u"
        ])
        // Synced: messages go straight through.
        b.onMessage("b1", "n2")
        assert.strictEqual(sink.calls.at(-1), "message b1=n2")
      })
  )

  it.effect("a part whose sync starts again drops what it held and read; the other part's are kept", () =>
    Effect.sync(() => {
      const { a, b, sink } = setup()
      a.onMessage("a1", "stale")
      a.endSync(new Map([["a1", "old"]]))
      b.onMessage("b1", "n1")
      // a's connection is replaced before b is synced: a syncs again.
      a.beginSync()
      a.onMessage("a2", "fresh")
      a.endSync(new Map([["a1", "new"]]))
      assert.deepStrictEqual(sink.calls, [], "b is still syncing")
      b.endSync(new Map())
      assert.deepStrictEqual(sink.calls, ["beginSync", "message a2=fresh", "message b1=n1", "endSync a1=new"])
    })
  )

  it.effect("after the first sync, one part's resync holds every part's messages until it ends", () =>
    Effect.sync(() => {
      const { a, b, sink } = synced()
      a.lost()
      a.beginSync()
      b.onMessage("b1", "during")
      a.onMessage("a1", "during")
      assert.deepStrictEqual(sink.calls, ["lost"])
      a.endSync(new Map([["a1", "read"]]))
      a.resynced()
      assert.deepStrictEqual(sink.calls, [
        "lost",
        "beginSync",
        "message a1=during",
        "message b1=during",
        "endSync a1=read",
        "resynced"
      ])
    })
  )

  it.effect("two parts lost: the sink hears of the loss once, and of the resync once both are synced again", () =>
    Effect.sync(() => {
      const { a, b, sink } = synced()
      a.lost()
      b.lost()
      a.beginSync()
      b.beginSync()
      a.endSync(new Map())
      a.resynced()
      assert.deepStrictEqual(sink.calls, ["lost"], "b is still resyncing")
      b.endSync(new Map())
      b.resynced()
      assert.deepStrictEqual(sink.calls, ["lost", "beginSync", "endSync ", "resynced"])
    })
  )

  it.effect(
    "a part's resync ending while another part's first sync runs: the resync is told after the sink's sync",
    () =>
      Effect.sync(() => {
        const { a, b, sink } = setup()
        a.endSync(new Map())
        a.lost()
        a.beginSync()
        a.endSync(new Map())
        a.resynced()
        assert.deepStrictEqual(sink.calls, ["lost"])
        b.endSync(new Map())
        assert.deepStrictEqual(sink.calls, ["lost", "beginSync", "endSync ", "resynced"])
      })
  )

  it.effect("a release goes to the part holding the channel's shard, which stops listing it", () =>
    Effect.sync(() => {
      const { a, b, split, log } = setup()
      split.byShard.get(1)!.release("a2")
      split.byShard.get(2)!.release("b1")
      assert.deepStrictEqual(log, ["part1 release a2", "part2 release b1"])
      assert.deepStrictEqual(a.channels(), ["a1"])
      assert.deepStrictEqual(b.channels(), [])
    })
  )

  it.effect("a part that fails fails the sink once, is forgotten, and takes every part out of its subscriber", () =>
    Effect.sync(() => {
      const { a, b, sink, log, split, forgotten } = setup()
      const error = new ConnectionError({ reason: "Shutdown", message: "shut down" })
      a.fail(Cause.fail(error))
      b.fail(Cause.fail(error))
      assert.deepStrictEqual(
        sink.calls.filter((c) => c.startsWith("fail")),
        [sink.calls.find((c) => c.startsWith("fail"))!],
        "failed once"
      )
      assert.include(sink.calls[0], "shut down")
      assert.deepStrictEqual(forgotten, [split])
      assert.deepStrictEqual(log, ["part1 detach", "part2 detach"])
      // A sync that ends after the failure reaches the sink no more.
      b.endSync(new Map())
      a.endSync(new Map())
      assert.strictEqual(sink.calls.length, 1)
    })
  )
})
