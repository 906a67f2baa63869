/**
 * The shared timer behind `waitFor` timeouts, on the TestClock: expiry order, removal, and an
 * earlier deadline added while the timer sleeps for a later one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scheduler, TestClock } from "effect"
import * as Deadlines from "../src/internal/deadlines.js"

const item = (name: string, expired: Array<string>): Deadlines.Expiring => ({
  deadline: 0,
  heapIndex: -1,
  expire: () => void expired.push(name)
})

describe("Deadlines", () => {
  it.scoped("expires in deadline order whatever the order of adding; removed ones never expire", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(Scheduler.defaultScheduler)
      const expired: Array<string> = []
      const millis = [500, 100, 900, 300, 700, 200, 800, 400, 600, 1000]
      const items = millis.map((m) => item(String(m), expired))
      items.forEach((it, i) => deadlines.add(it, millis[i]!))
      deadlines.remove(items[2]!) // 900
      deadlines.remove(items[1]!) // 100, the earliest
      deadlines.remove(items[1]!) // twice: nothing
      yield* TestClock.adjust(450)
      assert.deepStrictEqual(expired, ["200", "300", "400"])
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(expired, ["200", "300", "400", "500", "600", "700", "800", "1000"])
      assert.isTrue(items.every((it) => it.heapIndex === -1))
    })
  )

  it.scoped("an earlier deadline added while the timer sleeps for a later one expires on time", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(Scheduler.defaultScheduler)
      const expired: Array<string> = []
      deadlines.add(item("late", expired), 10_000)
      yield* TestClock.adjust(1) // the timer now sleeps until 10 s
      deadlines.add(item("early", expired), 50)
      yield* TestClock.adjust(60)
      assert.deepStrictEqual(expired, ["early"])
      yield* TestClock.adjust(10_000)
      assert.deepStrictEqual(expired, ["early", "late"])
      // Empty again, then a new one: the timer waits for it.
      deadlines.add(item("again", expired), 5)
      yield* TestClock.adjust(5)
      assert.deepStrictEqual(expired, ["early", "late", "again"])
    })
  )

  it.scoped("an infinite wait is not recorded; an expiry that throws does not stop the others", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(Scheduler.defaultScheduler)
      const expired: Array<string> = []
      const forever = item("forever", expired)
      deadlines.add(forever, Number.POSITIVE_INFINITY)
      assert.strictEqual(forever.heapIndex, -1)
      deadlines.add(
        {
          deadline: 0,
          heapIndex: -1,
          expire: () => {
            throw new Error("boom")
          }
        },
        10
      )
      deadlines.add(item("after", expired), 10)
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(expired, ["after"])
    })
  )
})
