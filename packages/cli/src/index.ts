export * as Cli from "./Cli.js"
export * as ExitCode from "./ExitCode.js"
