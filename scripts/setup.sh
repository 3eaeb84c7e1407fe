#!/usr/bin/env bash
# Install everything sohoa needs on a Debian 12 machine (as root), idempotently:
# system packages (apt) and a virtualenv in .venv with the Python dependencies.
# Usage: bash scripts/setup.sh [--with-services]   (services: Ceph RGW, Redis, PostgreSQL, Chromium, SoftHSM2)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PKGS=(python3 python3-venv python3-dev gcc g++ pkg-config tesseract-ocr tesseract-ocr-vie tesseract-ocr-eng
  libtesseract-dev libleptonica-dev poppler-utils qpdf ghostscript fonts-liberation fonts-liberation2 fonts-dejavu-core libnss3-tools curl zbar-tools)
SERVICE_PKGS=(radosgw ceph-mon ceph-mgr ceph-osd ceph-common redis-server postgresql
  softhsm2 opensc chromium ocrmypdf unpaper fonts-noto-mono)

want=("${BASE_PKGS[@]}")
if [ "${1:-}" = "--with-services" ]; then want+=("${SERVICE_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sohoa setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "sohoa setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.sohoa-deps
want_hash=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_hash" ]; then
  echo "sohoa setup: installing Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  # tesserocr from source: it links the system libtesseract, i.e. the same engine as the tesseract command
  .venv/bin/pip install -q -c constraints.txt --no-binary tesserocr -e ".[test]"
  echo "$want_hash" > "$stamp"
fi
