#!/usr/bin/env node
/**
 * The `effect-celery` executable: the CLI on Node, with Ctrl-C (SIGINT/SIGTERM) interrupting the
 * running command, which releases its connections and subscriptions before the process exits 130.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { run } from "./Cli.js"
import * as ExitCode from "./ExitCode.js"

run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) onExit(typeof exit.value === "number" ? exit.value : ExitCode.OK)
      else onExit(Cause.isInterruptedOnly(exit.cause) ? ExitCode.INTERRUPTED : ExitCode.BACKEND)
    }
  })
)
