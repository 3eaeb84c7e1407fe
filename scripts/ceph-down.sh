#!/usr/bin/env bash
# Stop the Ceph daemons started by scripts/ceph-up.sh (by pid file) and remove its directory.
# KEEP=1 keeps the directory (for a restart test with a file-backed OSD).
D=${D:-/tmp/sohoa-ceph}
for f in "$D"/run/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
for _ in $(seq 1 40); do
  alive=0
  for f in "$D"/run/*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 0.25
done
for f in "$D"/run/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
[ "${KEEP:-0}" = 1 ] || rm -rf "$D"
exit 0
