// The projects of the workspace. Vitest 3.2 deprecates a default-exported workspace file,
// so the list is a named export that the root vitest.config.ts passes to `test.projects`.
export const projects = [
  "packages/core/vitest.config.ts",
  "packages/redis/vitest.config.ts",
  "packages/sentinel/vitest.config.ts",
  "packages/cli/vitest.config.ts"
]
