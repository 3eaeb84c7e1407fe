#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback (as user postgres: the server refuses to run as root).
# Usage: PGDATA=/tmp/sohoa-pg PGPORT=5433 bash scripts/pg-up.sh   -> prints the database URL.
# Stop: runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $PGDATA stop -m fast
set -euo pipefail
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PGDATA=${PGDATA:-/tmp/sohoa-pg}; PGPORT=${PGPORT:-5433}
RUN="runuser -u postgres --"; [ "$(id -u)" = 0 ] || RUN=""
rm -rf "$PGDATA"; mkdir -p "$PGDATA"; [ -z "$RUN" ] || chown postgres: "$PGDATA"
$RUN "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
$RUN "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
  -o "-h 127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -Atc "create database sohoa" >/dev/null
echo "postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/sohoa"
