/**
 * The `effect-celery` command tree and its entry point as an Effect: `run(argv)` parses the
 * arguments, runs the command and yields the exit code (see `ExitCode`). It needs only the
 * platform services (`NodeContext.layer` in `bin.ts`).
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Effect from "effect/Effect"
import * as Doctor from "./Doctor.js"
import * as ExitCode from "./ExitCode.js"
import * as GroupCommands from "./GroupCommands.js"
import * as ResultCommands from "./ResultCommands.js"
import { exitCode, Outcome } from "./Run.js"
import * as StoreCommands from "./StoreCommands.js"

/** Kept equal to package.json's version (a test checks). */
export const VERSION = "0.2.0"

export const root = Command.make("effect-celery").pipe(
  Command.withDescription(
    "Look at, wait for and follow Celery task results in a Redis result backend (the URL from --url or $CELERY_RESULT_BACKEND)."
  ),
  Command.withSubcommands([
    ResultCommands.command,
    GroupCommands.group,
    GroupCommands.chord,
    StoreCommands.command,
    Doctor.command
  ])
)

const footer = HelpDoc.blocks([
  HelpDoc.h1("EXIT CODES"),
  ...ExitCode.table.map(([code, text]) => HelpDoc.p(`${String(code).padStart(3)}  ${text}`))
])

const cli = Command.run(root, { name: "effect-celery", version: VERSION, executable: "effect-celery", footer })

/**
 * Run the CLI on `argv` (`process.argv`: the first two entries are node and the script) and
 * return its exit code. A usage error has been printed by `@effect/cli` already.
 */
export const run = (argv: ReadonlyArray<string>) =>
  cli(argv).pipe(
    Effect.zipRight(exitCode),
    // Only a ValidationError gets here (commands settle their own errors), already printed.
    Effect.catchAll(() => Effect.succeed(ExitCode.USAGE)),
    Effect.provide(Outcome.layer)
  )
