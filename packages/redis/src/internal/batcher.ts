/**
 * A micro-batcher: lookups issued by many fibers in the same scheduler turn are answered by one
 * batched call (for the backend: one MGET instead of many GETs).
 *
 * One background fiber, owned by the caller's scope, takes the first waiting lookup, yields once so
 * that every fiber already runnable gets to enqueue its own, then takes up to `maxBatch` of them and
 * runs the batch in its own fiber; it goes straight back to collecting the next batch, so batches
 * pipeline on the connection instead of waiting for each other.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

interface Entry<K, V, E> {
  readonly key: K
  readonly deferred: Deferred.Deferred<V, E>
}

export interface BatcherOptions<K, V, E> {
  /** Most keys per batch (bounds the request and reply sizes). */
  readonly maxBatch: number
  /** Answer a batch: one value per key, in the same order. */
  readonly run: (keys: ReadonlyArray<K>) => Effect.Effect<ReadonlyArray<V>, E>
}

/** Returns the lookup function. Lookups still waiting when the scope closes are interrupted. */
export const make = <K, V, E>(
  options: BatcherOptions<K, V, E>
): Effect.Effect<(key: K) => Effect.Effect<V, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Entry<K, V, E>>()
    const running = yield* FiberSet.make<void>()

    const complete = (batch: ReadonlyArray<Entry<K, V, E>>, exit: Exit.Exit<ReadonlyArray<V>, E>) =>
      Effect.sync(() => {
        if (Exit.isFailure(exit)) {
          const failure = Exit.failCause(exit.cause)
          batch.forEach((entry) => Deferred.unsafeDone(entry.deferred, failure))
        } else if (exit.value.length !== batch.length) {
          // One value per key is the batch function's contract: a mismatch is a bug there.
          const defect = Exit.die(new Error(`batch of ${batch.length} answered ${exit.value.length} values`))
          batch.forEach((entry) => Deferred.unsafeDone(entry.deferred, defect))
        } else {
          const values = exit.value
          batch.forEach((entry, i) => Deferred.unsafeDone(entry.deferred, Exit.succeed(values[i] as V)))
        }
      })

    const runBatch = (batch: ReadonlyArray<Entry<K, V, E>>) =>
      Effect.suspend(() => options.run(batch.map((entry) => entry.key))).pipe(
        Effect.exit,
        Effect.flatMap((exit) => complete(batch, exit)),
        // Closed while in flight: its callers must not wait forever.
        Effect.onInterrupt(() => Effect.forEach(batch, (entry) => Deferred.interrupt(entry.deferred), { discard: true }))
      )

    yield* Effect.gen(function* () {
      for (;;) {
        const first = yield* Queue.take(queue)
        yield* Effect.yieldNow()
        const rest = yield* Queue.takeUpTo(queue, options.maxBatch - 1)
        const batch = [first, ...rest]
        yield* FiberSet.run(running, runBatch(batch))
      }
    }).pipe(Effect.interruptible, Effect.forkScoped)

    // On close, nobody may be left waiting: interrupt the queued lookups (FiberSet interrupts the
    // batches in flight, whose entries were completed or are interrupted below).
    yield* Effect.addFinalizer(() =>
      Queue.takeAll(queue).pipe(
        Effect.flatMap((entries) =>
          Effect.forEach(entries, (entry) => Deferred.interrupt(entry.deferred), { discard: true })
        ),
        Effect.zipRight(Queue.shutdown(queue))
      )
    )

    return (key: K) =>
      Effect.flatMap(Deferred.make<V, E>(), (deferred) =>
        Queue.offer(queue, { key, deferred }).pipe(Effect.zipRight(Deferred.await(deferred)))
      )
  })
