import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

// Each test spawns the built CLI several times (about a second of CPU each, mostly module loading):
// on two shared cores a test can take far longer than the shared 30 s default.
export default mergeConfig(shared, defineProject({ test: { name: "cli", testTimeout: 120_000 } }))
