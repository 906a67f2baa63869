/**
 * Reading the Sentinel metrics in tests. Several Sentinels (one per test, often with the same
 * master name) live in one process, so each test builds its Sentinel and reads its metrics under a
 * metric label of its own (`isolated`): Sentinel tags its metrics with the labels in effect where
 * it is made.
 */
import { randomUUID } from "node:crypto"
import { Effect, Metric, MetricLabel, Schedule } from "effect"
import { Sentinel } from "@effect-celery/sentinel"

/** Run a test body under a metric label of its own. */
export const isolated = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tagMetrics(self, "test.id", randomUUID())

const master = (masterName: string) => MetricLabel.make(Sentinel.MetricAttr.master, masterName)

/** `celery.sentinel.switches` of this master. */
export const switches = (masterName: string) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(Sentinel.masterSwitches, [master(masterName)])), (s) => s.count)

/** `celery.sentinel.connections` of this master. */
export const connections = (masterName: string) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(Sentinel.masterConnections, [master(masterName)])), (s) => s.value)

/** `celery.sentinel.watching` on this sentinel. */
export const watchingOn = (masterName: string, sentinel: Sentinel.Address) =>
  Effect.map(
    Metric.value(
      Metric.taggedWithLabels(Sentinel.watcherSubscribed, [
        master(masterName),
        MetricLabel.make(Sentinel.MetricAttr.serverAddress, sentinel.host),
        MetricLabel.make(Sentinel.MetricAttr.serverPort, String(sentinel.port))
      ])
    ),
    (s) => s.value
  )

/** Poll until `check` holds (every 50 ms, up to 10 s). */
export const until = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.flatMap(check, (ok) => (ok ? Effect.void : Effect.fail(`not yet: ${what}`))).pipe(
    Effect.retry({ times: 200, schedule: Schedule.spaced("50 millis") })
  )
