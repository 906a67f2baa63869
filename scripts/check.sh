#!/usr/bin/env bash
# The whole check, as CI runs it: install what is missing, lint, typecheck, build, every test suite,
# a smoke run of the benchmark; ends with one plain "tests: N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent lint
npm run --silent typecheck
node scripts/types-versions.mjs --check
npm run --silent build
# The API reference builds with no warning: no broken link, no undocumented or unexported public type.
npx typedoc --emit none --logLevel Warn
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json || status=$?
if [ "$status" = 0 ]; then bash scripts/consumer-test.sh || status=$?; fi
if [ "$status" = 0 ]; then npm run --silent bench:smoke || status=$?; fi
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"))
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)
'
exit "$status"
