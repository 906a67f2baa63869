#!/usr/bin/env node
/**
 * The `effect-celery` executable: the CLI on Node, with Ctrl-C (SIGINT/SIGTERM) interrupting the
 * running command, which releases its connections and subscriptions before the process exits 130.
 * When stdout is closed under it (`effect-celery results ls | head`), the command is interrupted
 * the same way and the process exits 141, as a shell reports a process ended by SIGPIPE.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { run } from "./Cli.js"
import * as ExitCode from "./ExitCode.js"

/** Succeeds with `STDOUT_CLOSED` once a write to stdout fails with EPIPE (the reader went away). */
const stdoutClosed = Effect.async<number>((resume) => {
  const onError = (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") resume(Effect.succeed(ExitCode.STDOUT_CLOSED))
  }
  process.stdout.on("error", onError)
  return Effect.sync(() => process.stdout.off("error", onError))
})

run(process.argv).pipe(
  Effect.raceFirst(stdoutClosed),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) onExit(typeof exit.value === "number" ? exit.value : ExitCode.OK)
      else onExit(Cause.isInterruptedOnly(exit.cause) ? ExitCode.INTERRUPTED : ExitCode.BACKEND)
    }
  })
)
