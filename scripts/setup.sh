#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine, and nothing when it is already there.
#   scripts/setup.sh        node modules + system packages (redis-server, redis-sentinel, openssl,
#                           Python Celery 5.2.6 with python3-redis for the interop tests, and the
#                           Debian packages the shared Celery 5.6.3 sources import)
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
# Celery 5.6.3 runs from ../shared/celery-5.6/site on the same interpreter; these are its
# dependencies that are not vendored there (see that directory's README).
for pkg in python3-click python3-click-didyoumean python3-click-repl python3-click-plugins python3-dateutil \
  python3-amqp python3-tzlocal python3-async-timeout python3-packaging; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Fail loudly here rather than skipping tests later.
/usr/bin/python3 -c 'import celery, redis; print("setup: celery", celery.__version__, "redis-py", redis.__version__)'
site=""
for dir in ../shared ../../shared; do
  if [ -f "$dir/celery-5.6/site/celery/__init__.py" ]; then site="$(cd "$dir/celery-5.6/site" && pwd)"; break; fi
done
if [ -z "$site" ]; then
  echo "setup: Celery 5.6.3 sources not found: copy shared/ beside the repository (../shared/celery-5.6/site)" >&2
  exit 1
fi
PYTHONPATH="$site" /usr/bin/python3 -c 'import celery, redis, tzlocal; print("setup: celery", celery.__version__, "redis-py", redis.__version__, "(shared)")'
redis-server --version
