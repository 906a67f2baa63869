/**
 * Cross-fiber batching over a command connection: the items that fibers submit in the same tick go
 * out as one command (at most `maxBatch` items each), and each caller is resumed with the outcome
 * of its own reply. `RedisClient.get` and the backend's stores are built on it.
 *
 * It knows the connection only through `Link`, so any connection manager can drive it (the single
 * connection of `connection.ts`, or one per node of a cluster): `C` is the manager's connection,
 * `H` what a spec's `one` / `many` are handed to send with.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as RuntimeFlags from "effect/RuntimeFlags"
import type { CommandError, ConnectionError } from "@effect-celery/core/Errors"
import type { Recover } from "../RedisClient.js"
import type { Failure } from "./lifecycle.js"

/** How a coalesced command is sent (`RedisClient.batched` adapts its public description to this). */
export interface Batched<I, R, O = R, E = never, H = unknown> {
  /** Names the command in errors. */
  readonly command: string
  /** Most items in one `many` call (bounds the request, the reply and the server's time on it). */
  readonly maxBatch: number
  /** One item alone (a batch of one, and each item again after an error reply to its batch). */
  readonly one: (handle: H, item: I) => Promise<R>
  /** Several items: one reply per item, in order; an `Error` (a nested error reply) fails only its item. */
  readonly many: (handle: H, items: Array<I>) => Promise<ReadonlyArray<R | Error>>
  /**
   * The caller's outcome from its item's reply, computed in the loop that hands a batch out rather
   * than by each resumed fiber, where decoding task metas was measured slower. A throw is a defect
   * of that caller alone.
   */
  readonly outcome: (reply: R, item: I) => Either.Either<O, E>
  /** What a caller whose item got no reply of its own resumes with (see `RedisClient.Recover`). */
  readonly recover?: Recover<I, O, E> | undefined
}

/**
 * A batched command's submit in callback form: `resume` is called once with the caller's outcome,
 * as a parked caller's fiber would be resumed (`outcome`'s Either on a reply). No fiber is parked,
 * so none is withdrawn at the flush: a caller that stops waiting ignores the later call.
 */
export type Enqueue<I, O, E> = (
  item: I,
  resume: (outcome: Effect.Effect<O, E | ConnectionError | CommandError>) => void
) => void

const EnqueueId: unique symbol = Symbol.for("@effect-celery/redis/Batcher/Enqueue")

/** `submit`'s callback form when a batcher made it; undefined for a submit of another making. */
export const enqueueOf = <I, O, E>(
  submit: (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>
): Enqueue<I, O, E> | undefined => (submit as { readonly [EnqueueId]?: Enqueue<I, O, E> })[EnqueueId]

/**
 * A `batched` submit run from inside its caller's own `Effect.withFiberRuntime` (the caller's
 * fiber and runtime flags given), which saves the node the plain submit makes to read them.
 */
export type SubmitIn<I, O, E> = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  flags: RuntimeFlags.RuntimeFlags,
  item: I
) => Effect.Effect<O, E | ConnectionError | CommandError>

const SubmitInId: unique symbol = Symbol.for("@effect-celery/redis/Batcher/SubmitIn")

interface Submit<I, O, E> {
  (item: I): Effect.Effect<O, E | ConnectionError | CommandError>
  readonly [SubmitInId]?: SubmitIn<I, O, E>
}

/** `submit`'s in-fiber form when a batcher made it, else one that calls `submit` (a client of another making). */
export const submitIn = <I, O, E>(submit: (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>) =>
  (submit as Submit<I, O, E>)[SubmitInId] ?? ((_fiber, _flags, item: I) => submit(item))

/** Coalesced batches below twice this size go as one command (each command costs tens of µs of client CPU). */
const MIN_HALF_BATCH = 16

/** What the batcher needs of a connection manager (`connection.ts`'s `Connections` is one). */
export interface Link<C, H> {
  /** A connection ready to send on now, or undefined (each item then goes through `execute`). */
  readonly live: () => C | undefined
  /** Send one command on `conn`; exactly one of `onSuccess` / `onFailure` is called, once. */
  readonly send: <A>(
    conn: C,
    command: string,
    f: (handle: H) => Promise<A>,
    onSuccess: (a: A) => void,
    onFailure: (failure: Effect.Effect<never, ConnectionError | CommandError>, isCommandError: boolean) => void
  ) => void
  /** Types a failure of `command` on `conn` (a nested error reply of one item, say). */
  readonly failWith: (conn: C, command: string, cause: unknown) => Failure
  /** One command, connecting first if needed. */
  readonly execute: <A>(
    command: string,
    f: (handle: H) => Promise<A>
  ) => Effect.Effect<A, ConnectionError | CommandError>
}

/** A client's batcher: `batched` specs share one delivery schedule (see below). */
export type Batcher<H> = <I, R, O = R, E = never>(
  spec: Batched<I, R, O, E, H>
) => (item: I) => Effect.Effect<O, E | ConnectionError | CommandError>

/** The batcher over a client's connections. */
export const make = <C, H>(connections: Link<C, H>): Batcher<H> => {
  const { execute, failWith, send } = connections
  // One node-redis command costs several µs of client CPU whatever its size (an MGET key about a
  // fifth of a GET). Callers park in `Effect.async`; one microtask after the first item of a
  // tick, the batch is sent.
  // Replies that arrive together are handed out one batch per event-loop turn, and the next
  // batch only after node-redis has written what the last one's callers sent (it writes in a
  // setImmediate of its own): the server works on those while the client handles the next
  // batch, so client and server overlap instead of taking turns (measurements: bench/RESULTS.md,
  // "Design measurements").
  let turnBusy = false
  const nextTurns: Array<() => void> = []
  const endTurn = (): void => {
    if (nextTurns.length === 0) turnBusy = false
    else setImmediate(nextTurn)
  }
  const nextTurn = (): void => {
    setImmediate(endTurn)
    nextTurns.shift()!()
  }
  const deliver = (f: () => void): void => {
    if (turnBusy) {
      nextTurns.push(f)
      return
    }
    turnBusy = true
    setImmediate(endTurn)
    f()
  }
  const batched = <I, R, O = R, E = never>(
    spec: Batched<I, R, O, E, H>
  ): ((item: I) => Effect.Effect<O, E | ConnectionError | CommandError>) => {
    type Resume = (effect: Effect.Effect<O, E | ConnectionError | CommandError>) => void
    const recover = spec.recover
    // The callers submitted through `again` (a recovery's own attempts), not recovered twice.
    // Only those are added, so the hot path never touches it.
    const bare = new WeakSet<Resume>()
    /** What the caller of `item` resumes with when its item got no reply of its own. */
    const unanswered = (
      attempt: Effect.Effect<O, E | ConnectionError | CommandError>,
      item: I,
      resume: Resume
    ): Effect.Effect<O, E | ConnectionError | CommandError> =>
      recover === undefined || bare.has(resume) ? attempt : recover(attempt, item, again)
    let items: Array<I> = []
    let resumes: Array<Resume> = []
    let callers: Array<Fiber.RuntimeFiber<unknown, unknown> | undefined> = []
    // Batches sent and not yet handed out to their callers.
    let inFlight = 0

    const outcomeOf = (reply: R, item: I): Effect.Effect<O, E> => {
      try {
        return spec.outcome(reply, item)
      } catch (cause) {
        return Effect.die(cause)
      }
    }

    const alone = (item: I): Effect.Effect<O, E | ConnectionError | CommandError> =>
      Effect.flatMap(
        execute(spec.command, (c) => spec.one(c, item)),
        (reply) => outcomeOf(reply, item)
      )

    const sendBatch = (conn: C, batch: Array<I>, waiting: ReadonlyArray<Resume>): void => {
      if (batch.length === 1) {
        const item = batch[0]!
        const resume = waiting[0]!
        return send(
          conn,
          spec.command,
          (c) => spec.one(c, item),
          (reply) => resume(outcomeOf(reply, item)),
          (failure) => resume(unanswered(failure, item, resume))
        )
      }
      inFlight++
      send(
        conn,
        spec.command,
        (c) => spec.many(c, batch),
        (replies) =>
          deliver(() => {
            inFlight--
            // All outcomes first, then all resumes: decoding between resumes was measured slower.
            const outcomes = new Array<Effect.Effect<O, E | ConnectionError | CommandError>>(waiting.length)
            for (let i = 0; i < waiting.length; i++) {
              const r = replies[i]
              outcomes[i] =
                r instanceof Error
                  ? unanswered(failWith(conn, spec.command, r).effect, batch[i]!, waiting[i]!)
                  : r === undefined
                    ? unanswered(
                        failWith(conn, spec.command, new Error(`no reply for item ${i} of ${batch.length}`)).effect,
                        batch[i]!,
                        waiting[i]!
                      )
                    : outcomeOf(r, batch[i]!)
            }
            for (let i = 0; i < waiting.length; i++) waiting[i]!(outcomes[i]!)
          }),
        (failure, isCommandError) => {
          inFlight--
          // An error reply to the whole batch: each item on its own, so it fails only its own caller.
          for (let i = 0; i < waiting.length; i++) {
            waiting[i]!(unanswered(isCommandError ? alone(batch[i]!) : failure, batch[i]!, waiting[i]!))
          }
        }
      )
    }

    const flush = (): void => {
      const batch = items
      const waiting = resumes
      const fibers = callers
      items = []
      resumes = []
      callers = []
      // Withdraw the callers interrupted while parked (their fiber has resumed itself).
      let kept = 0
      for (let i = 0; i < batch.length; i++) {
        const fiber = fibers[i]
        if (fiber !== undefined && !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))) continue
        batch[kept] = batch[i]!
        waiting[kept] = waiting[i]!
        kept++
      }
      if (kept === 0) return
      batch.length = kept
      waiting.length = kept
      const conn = connections.live()
      if (conn === undefined) {
        // No live connection: each caller takes the reconnecting path.
        for (let i = 0; i < waiting.length; i++) waiting[i]!(unanswered(alone(batch[i]!), batch[i]!, waiting[i]!))
        return
      }
      if (batch.length <= spec.maxBatch) {
        // With one batch in flight the client idles while the server works and the other way
        // round: a large batch with none in flight goes in two halves, so that one half's
        // callers run while the other is served (and the two stay apart from then on).
        if (inFlight > 0 || batch.length < 2 * MIN_HALF_BATCH) return sendBatch(conn, batch, waiting)
        const half = Math.ceil(batch.length / 2)
        sendBatch(conn, batch.slice(0, half), waiting.slice(0, half))
        return sendBatch(conn, batch.slice(half), waiting.slice(half))
      }
      for (let i = 0; i < batch.length; i += spec.maxBatch) {
        sendBatch(conn, batch.slice(i, i + spec.maxBatch), waiting.slice(i, i + spec.maxBatch))
      }
    }

    // A caller interrupted while parked is withdrawn at the flush: its item is never sent (once
    // sent, it cannot be taken back; the reply is then dropped with the caller). The flush reads
    // the caller's fiber rather than a canceller being registered: a canceller wraps every call
    // in an `onInterrupt`, which costs `get` much of its throughput (bench/RESULTS.md).
    const park = (
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      flags: RuntimeFlags.RuntimeFlags,
      item: I,
      recoverable: boolean
    ): Effect.Effect<O, E | ConnectionError | CommandError> =>
      Effect.async((resume) => {
        if (items.length === 0) queueMicrotask(flush)
        items.push(item)
        resumes.push(resume)
        if (!recoverable) bare.add(resume)
        // An uninterruptible caller still waits for its reply, interrupted or not.
        callers.push(RuntimeFlags.interruptible(flags) ? fiber : undefined)
      })
    const parked: SubmitIn<I, O, E> = (fiber, flags, item) => park(fiber, flags, item, true)
    const submit = (item: I) =>
      Effect.withFiberRuntime<O, E | ConnectionError | CommandError>((fiber, status) =>
        park(fiber, status.runtimeFlags, item, true)
      )
    const enqueue: Enqueue<I, O, E> = (item, resume) => {
      if (items.length === 0) queueMicrotask(flush)
      items.push(item)
      resumes.push(resume)
      callers.push(undefined)
    }
    const again = (item: I) =>
      Effect.withFiberRuntime<O, E | ConnectionError | CommandError>((fiber, status) =>
        park(fiber, status.runtimeFlags, item, false)
      )
    return Object.assign(submit, { [EnqueueId]: enqueue, [SubmitInId]: parked })
  }

  return batched
}
