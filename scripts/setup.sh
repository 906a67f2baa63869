#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine, and nothing when it is already there.
#   scripts/setup.sh        node modules + system packages (redis-server, redis-sentinel, openssl,
#                           Python Celery 5.2.6 with python3-redis for the interop tests)
#   scripts/setup.sh node   node modules only (enough for the in-memory demo)
set -euo pipefail
cd "$(dirname "$0")/.."

# node_modules is (re)installed with `npm ci` when missing or older than the lockfile: exactly the
# committed lockfile, which npm ci never rewrites (so a fresh clone stays clean).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

[ "${1:-all}" = node ] && exit 0

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || [ -x /usr/bin/redis-sentinel ] || missing+=(redis-sentinel)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The system python (not a pyenv one first on PATH) must import Celery and redis-py.
/usr/bin/python3 -c 'import celery, redis, kombu' >/dev/null 2>&1 || missing+=(python3-celery python3-redis)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Fail loudly here rather than skipping tests later.
/usr/bin/python3 -c 'import celery, redis; print("setup: celery", celery.__version__, "redis-py", redis.__version__)'
redis-server --version
