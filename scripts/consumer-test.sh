#!/usr/bin/env bash
# The install test: what a user gets from npm, checked from outside the workspace.
# Packs the built packages, installs the tarballs into a fresh project in a temporary folder with
# exactly the README's install line (its package names → these tarballs, other names at the
# lockfile's versions), then: tsc --noEmit (strict; NodeNext and Bundler resolution), the compiled
# program run by plain node against a real redis-server (store, waitFor, watch), require() from a
# .cjs file, and the installed effect-celery binary. Fails on a missing peer, a type that does not
# resolve, or an install line that is wrong. Needs `npm run build` first.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/effect-celery-consumer.XXXXXX")"
redis_pid=""
cleanup() {
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "consumer: $*"; }
lockver() { node -e 'const l=require(process.argv[1]);const p=l.packages["node_modules/"+process.argv[2]];if(!p){process.exit(1)}console.log(p.version)' "$repo/package-lock.json" "$1"; }

mkdir -p "$work/tarballs" "$work/app"
for pkg in core redis sentinel cli; do
  (cd "$repo/packages/$pkg" && npm pack --silent --pack-destination "$work/tarballs" >/dev/null)
done
if tar -tzf "$work"/tarballs/*core-*.tgz | grep -q 'tsbuildinfo'; then say "a tarball ships a .tsbuildinfo"; exit 1; fi

# The README's install line, e.g. `npm install @effect-celery/core @effect-celery/redis effect`.
line="$(grep -m1 -E '^npm install @effect-celery/' "$repo/README.md")"
[ -n "$line" ] || { say "no install line in README.md"; exit 1; }
say "README: $line"
args=()
for word in ${line#npm install }; do
  case "$word" in
    @effect-celery/*) args+=("$work/tarballs/effect-celery-${word#@effect-celery/}-"*.tgz) ;;
    -*) ;;
    *) args+=("$word@$(lockver "$word")") ;;
  esac
done

cd "$work/app"
printf '{ "name": "consumer", "private": true, "type": "module" }\n' > package.json
npm install --no-audit --no-fund --loglevel=error --prefer-offline "${args[@]}" >/dev/null
say "node_modules of that line: $(du -sk node_modules | cut -f1) kB, $(npm ls --all --parseable 2>/dev/null | tail -n +2 | wc -l) packages"
# Sentinel and the CLI, as the README's next sentence adds them.
npm install --no-audit --no-fund --loglevel=error --prefer-offline \
  "$work"/tarballs/effect-celery-sentinel-*.tgz "$work"/tarballs/effect-celery-cli-*.tgz >/dev/null
# The consumer's own tools, not peers of ours.
npm install --no-audit --no-fund --loglevel=error --prefer-offline --save-dev \
  "typescript@$(lockver typescript)" "@types/node@$(lockver @types/node)" >/dev/null
say "installed: $(node -e 'const d=require("./package.json").dependencies;console.log(Object.keys(d).join(" "))')"

cp "$repo/scripts/consumer/main.ts" "$repo/scripts/consumer/require.cjs" .
for resolution in NodeNext Bundler; do
  module=NodeNext; [ "$resolution" = Bundler ] && module=ESNext
  npx tsc --noEmit --strict --exactOptionalPropertyTypes --target ES2022 --module "$module" \
    --moduleResolution "$resolution" --types node --skipLibCheck false main.ts
  say "tsc --noEmit, moduleResolution $resolution: ok"
done
npx tsc --strict --target ES2022 --module NodeNext --moduleResolution NodeNext --types node --outDir dist main.ts

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
export CELERY_RESULT_BACKEND="redis://127.0.0.1:$port/0"

node dist/main.js
node require.cjs
npx --no-install effect-celery --help >/dev/null
npx --no-install effect-celery result exists "missing-$$" --url "$CELERY_RESULT_BACKEND" >/dev/null && code=0 || code=$?
say "effect-celery --help: ok; result exists on a missing id: exit $code"
[ "$code" != 0 ] || { say "expected a non-zero exit for a missing id"; exit 1; }
say "ok"
