import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

// Tests import sibling packages from source, never from a build output.
const shared: ViteUserConfig = {
  resolve: {
    alias: [
      { find: /^@effect-celery\/(core|redis|sentinel|cli)$/, replacement: `${root}/packages/$1/src/index.ts` },
      { find: /^@effect-celery\/(core|redis|sentinel|cli)\/(.*)$/, replacement: `${root}/packages/$1/src/$2.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: [path.join(root, "vitest.setup.ts")],
    sequence: { concurrent: true },
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
}
export default shared
