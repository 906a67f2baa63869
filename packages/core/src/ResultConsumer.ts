/**
 * Task state changes as a Stream: what Celery's `ResultConsumer` does over Pub/Sub, as a value.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Stream from "effect/Stream"
import type { BackendError, DecodeError, InvalidIdError } from "./Errors.js"
import type { TaskMeta } from "./Meta.js"

export const TypeId: unique symbol = Symbol.for("@effect-celery/core/ResultConsumer")
export type TypeId = typeof TypeId

export interface WatchOptions {
  /**
   * Keep following after every watched task is ready (until the stream is interrupted), instead of
   * ending on the last ready state. Default false.
   */
  readonly follow?: boolean | undefined
  /**
   * When the stream ends (done, failed or interrupted), release its subscriptions in the
   * background instead of waiting for the server to acknowledge them, so the end is never held by
   * a frozen server. Default false: a watch that ends by itself (every task ready) waits (bounded)
   * until nothing is left subscribed; one cut short (interrupted, failed, no longer pulled) never
   * waits. A consumer with nothing to acknowledge (the in-memory one) ignores it.
   */
  readonly detach?: boolean | undefined
}

/** The bound of a `ResultConsumer.waitReady`: after `duration` it fails with `onTimeout()`. */
export interface WaitReadyTimeout<E> {
  readonly duration: Duration.Duration
  readonly onTimeout: () => E
}

/** How a `ResultConsumer.waitReady` starts. */
export interface WaitReadyOptions {
  /**
   * Read the stored state before subscribing: a state already ready (or one that does not decode)
   * is the answer, with nothing subscribed; otherwise, or when that read fails, subscribe → read →
   * wait as without it. The timeout bounds the whole, the first read included.
   */
  readonly readFirst?: boolean | undefined
}

export interface ResultConsumer {
  readonly [TypeId]: TypeId
  /**
   * Every state change of the watched tasks, in order per task: first the current stored state
   * (if any), then each state stored later. A task's stream ends on its ready state (SUCCESS,
   * FAILURE, REVOKED); the whole stream ends when every watched task is ready, unless `follow`.
   * The subscription lives exactly as long as the stream. A value that cannot be decoded (a key
   * holding a non-string too, reported once) is emitted as a `Left` without stopping the others;
   * the task is still followed until a ready state. An empty id fails the stream with
   * `InvalidIdError` before anything is subscribed.
   */
  readonly watch: (
    taskIds: Iterable<string>,
    options?: WatchOptions
  ) => Stream.Stream<Either.Either<TaskMeta, DecodeError>, BackendError | InvalidIdError>
  /**
   * Optional fast path for `ResultBackend.waitFor`: the first state of `taskId` that is ready or
   * does not decode (a `Left`), with `watch([taskId])`'s guarantees (a state stored before the call
   * is found, nothing is left subscribed) but no Stream in between. Fails with
   * `timeout.onTimeout()` after `timeout.duration`. A backend waits through `watch` when a consumer
   * has none, with the same results, so a consumer that wraps another should forward it (and its
   * `options`) to keep the faster wake-up.
   */
  readonly waitReady?: <E = never>(
    taskId: string,
    timeout?: WaitReadyTimeout<E>,
    options?: WaitReadyOptions
  ) => Effect.Effect<Either.Either<TaskMeta, DecodeError>, BackendError | InvalidIdError | E>
}

export const ResultConsumer: Context.Tag<ResultConsumer, ResultConsumer> = Context.GenericTag<ResultConsumer>(
  "@effect-celery/core/ResultConsumer"
)
