#!/usr/bin/env bash
# Installs what the hotline needs on a Debian machine, idempotently:
#   Debian packages, a scratch Redis for the tests (--test only: `hotline up` runs its own),
#   the Python environment in .venv, the Asterisk 22 root
#   (built once from Debian sid and cached in ~/.cache/hotline12345, outside the repository).
# Usage: scripts/setup.sh [--test]   (--test adds the test tools and the Vosk test model)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

packages=(python3 python3-venv python3-dev gcc redis-server redis-tools sip-tester espeak-ng
          libespeak-ng1 sox debootstrap iproute2 util-linux kamailio)
# The browser tests drive Debian's chromium through Playwright (which downloads no browser);
# the CJK fonts make the pages' Chinese readable in screenshots.
[[ -n "$extras" ]] && packages+=(chromium fonts-noto-cjk)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# Kamailio (several Asterisk boxes behind one SIP address) runs with the configuration
# `hotline kamailio` renders; the distribution's service would take port 5060 with its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet kamailio 2>/dev/null; then
  say "disabling the distribution's kamailio service (the hotline runs its own)"
  as_root systemctl disable --now kamailio || true
fi

# `hotline up` starts the hotline's own Redis (password, AOF, under the data folder). The
# tests want a scratch Redis besides: the system one, or one started here without data.
if [[ -n "$extras" ]]; then
  test_redis="${HOTLINE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
  if ! redis-cli -u "$test_redis" ping >/dev/null 2>&1; then
    say "starting a scratch redis-server for the tests on 127.0.0.1:6379"
    mkdir -p -m 0700 /tmp/hotline-test-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/hotline-test-redis --logfile /tmp/hotline-test-redis/redis.log
    for _ in $(seq 50); do redis-cli -u "$test_redis" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extras:+-test}"
if [[ ! -f "$stamp" ]]; then
  say "installing the Python environment (.venv)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".${extras}"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

say "building or reusing the Asterisk 22 root"
.venv/bin/python -c '
import logging, sys
from hotline.settings import Settings
from pbx.root import build_root
logging.basicConfig(level=logging.INFO, format="%(message)s")
s = Settings.load()
print(build_root(s.asterisk_cache_dir, s.debian_mirror))
'
say "ready"
