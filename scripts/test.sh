#!/usr/bin/env bash
# The whole test suite: installs system packages (incl. the real servers the tests start:
# Ceph RADOS Gateway, PostgreSQL, Redis, Chromium, SoftHSM2) and Python deps, then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k repository`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-services
workers=${SOHOA_TEST_WORKERS:-$(nproc --all)}  # before OMP_THREAD_LIMIT: nproc honours it
export OMP_THREAD_LIMIT=1
export PYTHONDONTWRITEBYTECODE=1
mkdir -p test-artifacts
exec .venv/bin/pytest -n "$workers" --dist loadfile -p no:cacheprovider \
  --junitxml=test-artifacts/junit.xml -ra "$@"
