/**
 * The exit codes of `effect-celery`, and the code a set of task states stands for. Scripts branch
 * on these, so they are part of the CLI's contract (listed in `--help` and the README).
 */
import * as TaskState from "@effect-celery/core/TaskState"

/** Every task asked about is SUCCESS (or the command did what it was asked). */
export const OK = 0
/** A task asked about is FAILURE or REVOKED. */
export const FAILED = 1
/** Bad arguments or configuration (unknown option, malformed URL, missing URL). */
export const USAGE = 2
/** A task asked about is not ready (PENDING, STARTED, RETRY, a custom state…), or not stored. */
export const NOT_READY = 3
/** `--timeout` elapsed before every task was ready. */
export const TIMEOUT = 4
/** The server could not be reached, refused a command, or holds a value that is not a Celery meta. */
export const BACKEND = 5
/** Interrupted (Ctrl-C / SIGINT, SIGTERM): subscriptions are released before exiting. */
export const INTERRUPTED = 130
/** stdout was closed by its reader (`| head`): stopped as if interrupted; 128 + SIGPIPE. */
export const STDOUT_CLOSED = 141

/** The documentation of the codes, as `--help` and the README show it. */
export const table: ReadonlyArray<readonly [number, string]> = [
  [OK, "every task is SUCCESS (or the command succeeded)"],
  [FAILED, "a task is FAILURE or REVOKED"],
  [USAGE, "bad arguments or configuration (e.g. a malformed URL)"],
  [NOT_READY, "a task is not ready (PENDING, STARTED, RETRY, PROGRESS…) or not stored"],
  [TIMEOUT, "--timeout elapsed first"],
  [BACKEND, "connection, server or decoding error"],
  [INTERRUPTED, "interrupted (Ctrl-C)"],
  [STDOUT_CLOSED, "stdout closed by its reader (e.g. | head)"]
]

/** FAILED when any state is FAILURE/REVOKED, else NOT_READY when any is not SUCCESS, else OK. */
export const ofStates = (states: Iterable<string>): number => {
  let code = OK
  for (const state of states) {
    if (TaskState.isPropagate(state)) return FAILED
    if (state !== TaskState.SUCCESS) code = NOT_READY
  }
  return code
}

/** The more severe of two outcomes of the same run (FAILED over NOT_READY over OK). */
export const worst = (a: number, b: number): number => {
  const rank = (c: number) => (c === OK ? 0 : c === NOT_READY ? 1 : c === FAILED ? 2 : 3)
  return rank(a) >= rank(b) ? a : b
}
