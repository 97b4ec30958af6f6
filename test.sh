#!/usr/bin/env bash
# Sets everything up and runs the checks and the whole test suite against the real parts.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --test
echo "[test] ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest"
exec .venv/bin/pytest "$@"
