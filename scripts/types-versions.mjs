// Writes each library package's `typesVersions` from its top-level modules, so TypeScript's old
// `moduleResolution: node10` (which ignores `exports`) resolves `@effect-celery/x/Module` too.
// `npm run manifests` writes them; `npm run check` runs it with --check and fails when a module
// added to src/ has no entry yet.
import * as fs from "node:fs"
import * as path from "node:path"

const check = process.argv.includes("--check")
let stale = 0
const root = path.join(path.dirname(new URL(import.meta.url).pathname), "..")
for (const pkg of ["core", "redis", "sentinel"]) {
  const dir = path.join(root, "packages", pkg)
  const modules = fs
    .readdirSync(path.join(dir, "src"))
    .filter((f) => f.endsWith(".ts") && f !== "index.ts")
    .map((f) => f.slice(0, -3))
    .sort()
  const manifestPath = path.join(dir, "package.json")
  const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"))
  const entries = Object.fromEntries(modules.map((m) => [m, [`./dist/${m}.d.ts`]]))
  const next = { "*": entries }
  if (JSON.stringify(manifest.typesVersions) !== JSON.stringify(next)) {
    if (check) {
      console.error(`packages/${pkg}/package.json: typesVersions is out of date; run npm run manifests`)
      stale++
    } else {
      manifest.typesVersions = next
      fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n")
    }
  }
}
process.exit(stale > 0 ? 1 : 0)
