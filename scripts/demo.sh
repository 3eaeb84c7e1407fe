#!/usr/bin/env bash
# The main job on embedded defaults (local object store, SQLite, in-process signing):
# installs what it needs, initializes SOHOA_HOME (default ./var/demo) and runs `sohoa demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SOHOA_HOME=${SOHOA_HOME:-$PWD/var/demo}
export OMP_THREAD_LIMIT=1
.venv/bin/sohoa init --if-missing
exec .venv/bin/sohoa demo "$@"
