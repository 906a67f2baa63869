/**
 * The subscriber's routing rules on their own, no server: ref counts per channel, what is queued
 * for SUBSCRIBE (first syncs) and UNSUBSCRIBE (last sink gone), which sinks a message goes to, and
 * the release counts `remove` waits on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { RouteTable } from "../src/internal/routeTable.js"

/** A sink holding `held` (mutable, as a watch drops its done tasks). */
class TestSink {
  readonly got: Array<string> = []
  constructor(
    readonly name: string,
    public held: Array<string>
  ) {}
  channels = () => this.held
}

const setup = () => {
  const state = { live: true }
  const table = new RouteTable<TestSink>(() => state.live)
  const deliver = (sink: TestSink, channel: string, message: string) => void sink.got.push(`${channel}=${message}`)
  const publish = (channel: string, message: string) => table.forEachRoute(channel, message, deliver)
  return { state, table, publish }
}

describe("RouteTable", () => {
  it.effect("routes each channel to the sinks holding it; duplicates in one sink are counted and routed once", () =>
    Effect.sync(() => {
      const { table, publish } = setup()
      const a = new TestSink("a", ["x", "y", "x"])
      const b = new TestSink("b", ["y", "z"])
      assert.strictEqual(table.add(a), 1)
      assert.strictEqual(table.add(b), 0)
      assert.strictEqual(table.channelCount, 3)
      assert.strictEqual(table.sinkCount, 2)
      publish("x", "1")
      publish("y", "2")
      publish("z", "3")
      publish("nobody", "4")
      assert.deepStrictEqual(a.got, ["x=1", "y=2"])
      assert.deepStrictEqual(b.got, ["y=2", "z=3"])
    })
  )

  it.effect("first syncs are taken once, for sinks still present, with their channels each once", () =>
    Effect.sync(() => {
      const { table } = setup()
      assert.isUndefined(table.takeSyncs())
      const a = new TestSink("a", ["x", "y"])
      const b = new TestSink("b", ["y", "z"])
      const gone = new TestSink("gone", ["w"])
      table.add(a)
      table.add(b)
      table.add(gone)
      table.detach(gone)
      const syncs = table.takeSyncs()!
      assert.deepStrictEqual(syncs.sinks, [a, b])
      assert.deepStrictEqual([...syncs.channels].sort(), ["x", "y", "z"])
      assert.isUndefined(table.takeSyncs(), "taken")
      // One sink: its own list.
      const c = new TestSink("c", ["q"])
      table.add(c)
      assert.deepStrictEqual(table.takeSyncs(), { sinks: [c], channels: ["q"] })
    })
  )

  it.effect("a shared channel is UNSUBSCRIBEd only when its last sink releases it, and only on a live connection", () =>
    Effect.sync(() => {
      const { state, table, publish } = setup()
      const a = new TestSink("a", ["x", "y"])
      const b = new TestSink("b", ["x"])
      table.add(a)
      table.add(b)
      table.takeSyncs()
      assert.isFalse(table.release(a, "x"), "b still holds x")
      assert.isFalse(table.release(a, "x"), "a released it already")
      assert.isFalse(table.release(b, "nope"), "never routed")
      publish("x", "1")
      assert.deepStrictEqual(a.got, [])
      assert.deepStrictEqual(b.got, ["x=1"])
      assert.isTrue(table.release(b, "x"), "last sink: UNSUBSCRIBE queued")
      assert.isTrue(table.hasPending())
      assert.isFalse(table.releasesSettled())
      state.live = false
      assert.isFalse(table.release(a, "y"), "no connection: nothing to unsubscribe")
      assert.strictEqual(table.channelCount, 0)
      const un = table.takeUnsubscribes(() => true)!
      assert.deepStrictEqual(un.channels, ["x"])
      assert.isUndefined(table.takeUnsubscribes(() => true))
      assert.isFalse(table.releasesSettled())
      table.settleReleases(un.target)
      assert.isTrue(table.releasesSettled())
    })
  )

  it.effect("the UNSUBSCRIBE skips channels routed again since, and channels the connection never subscribed", () =>
    Effect.sync(() => {
      const { table } = setup()
      const a = new TestSink("a", ["x", "y", "z"])
      table.add(a)
      table.detach(a)
      const b = new TestSink("b", ["x"])
      table.add(b)
      const un = table.takeUnsubscribes((channel) => channel !== "z")!
      assert.deepStrictEqual(un.channels, ["y"])
      // Three releases were requested: settling at the target counts them all.
      table.settleReleases(un.target)
      assert.isTrue(table.releasesSettled())
    })
  )

  it.effect("release waiters are called when the releases requested before them are acknowledged, not later ones", () =>
    Effect.sync(() => {
      const { table } = setup()
      const calls: Array<string> = []
      table.whenReleased(() => calls.push("nothing pending"))
      assert.deepStrictEqual(calls, ["nothing pending"])
      const a = new TestSink("a", ["x"])
      const b = new TestSink("b", ["y"])
      table.add(a)
      table.add(b)
      table.detach(a)
      table.whenReleased(() => calls.push("after a"))
      const first = table.takeUnsubscribes(() => true)!
      table.detach(b)
      table.whenReleased(() => calls.push("after b"))
      const second = table.takeUnsubscribes(() => true)!
      table.settleReleases(first.target)
      assert.deepStrictEqual(calls, ["nothing pending", "after a"])
      table.settleReleases(second.target)
      assert.deepStrictEqual(calls, ["nothing pending", "after a", "after b"])
    })
  )

  it.effect("a lost connection settles every release; a resync takes every sink and drops queued work", () =>
    Effect.sync(() => {
      const { table } = setup()
      const calls: Array<string> = []
      const a = new TestSink("a", ["x"])
      const b = new TestSink("b", ["y"])
      table.add(a)
      table.add(b)
      table.detach(a)
      table.whenReleased(() => calls.push("released"))
      table.dropUnsubscribes()
      assert.deepStrictEqual(calls, ["released"])
      const c = new TestSink("c", ["z"])
      table.add(c)
      table.release(c, "z")
      assert.deepStrictEqual(table.beginResync(), [b, c])
      assert.isFalse(table.hasPending())
      assert.isTrue(table.releasesSettled())
      assert.deepStrictEqual(table.channels(), ["y"])
    })
  )

  it.effect(
    "a sink that releases a channel while a message on it is delivered does not make the next sink miss it",
    () =>
      Effect.sync(() => {
        const { table } = setup()
        const a = new TestSink("a", ["x"])
        const b = new TestSink("b", ["x"])
        const c = new TestSink("c", ["x"])
        table.add(a)
        table.add(b)
        table.add(c)
        const got: Array<string> = []
        table.forEachRoute("x", "done", (sink, channel) => {
          got.push(sink.name)
          table.release(sink, channel)
        })
        assert.deepStrictEqual(got, ["a", "b", "c"])
        assert.strictEqual(table.channelCount, 0)
      })
  )

  it.effect("detach forgets the sink and its pending sync; clear returns every sink and leaves nothing", () =>
    Effect.sync(() => {
      const { table, publish } = setup()
      const a = new TestSink("a", ["x"])
      const b = new TestSink("b", ["x", "y"])
      table.add(a)
      table.add(b)
      assert.isFalse(table.detach(a), "b holds x")
      assert.isFalse(table.detach(a), "twice: nothing")
      assert.isFalse(table.has(a))
      assert.deepStrictEqual(table.takeSyncs()?.sinks, [b])
      table.add(a)
      assert.deepStrictEqual(table.clear(), [b, a])
      assert.strictEqual(table.channelCount, 0)
      assert.strictEqual(table.sinkCount, 0)
      assert.isFalse(table.hasPending())
      publish("x", "1")
      assert.deepStrictEqual([...a.got, ...b.got], [])
    })
  )
})
