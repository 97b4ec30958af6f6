#!/usr/bin/env bash
# Sets everything up and runs the hotline in the foreground (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/hotline up
