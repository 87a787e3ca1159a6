#!/usr/bin/env bash
# PostgreSQL (with PgBouncer in front of it) + Pulsar for tests and benchmarks, on
# 127.0.0.1 only.
#
#   scripts/services/services.sh up|down|status|env
#
#   up      start both (idempotent; a no-op when both are already healthy)
#   down    stop both (data kept)
#   status  report both; non-zero when one is not answering
#   env     print `export VAR=...` lines for eval, honouring values already set:
#             eval "$(scripts/services/services.sh env)"
#           DATABASE_URL, OUTBOX_PGBOUNCER_URL, PULSAR_URL, PULSAR_ADMIN_URL, and OUTBOX_PG_MANAGED /
#           OUTBOX_PULSAR_MANAGED (1 = started by these scripts, so e.g.
#           `scripts/services/pulsar.sh restart` still works under that env).
#
# Set DATABASE_URL and/or PULSAR_URL (+ PULSAR_ADMIN_URL) beforehand to use
# existing servers instead; then nothing is started for them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Single-quote for sh/bash eval.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

print_env() {
  local db pulsar admin pg_managed=1 pulsar_managed=1
  if [ -n "${DATABASE_URL:-}" ] && [ "${OUTBOX_PG_MANAGED:-}" != 1 ]; then
    db=$DATABASE_URL; pg_managed=0
  else
    db=$(env -u DATABASE_URL "$here/pg.sh" url)
  fi
  if [ -n "${PULSAR_URL:-}" ] && [ "${OUTBOX_PULSAR_MANAGED:-}" != 1 ]; then
    pulsar=$PULSAR_URL; pulsar_managed=0
    admin=${PULSAR_ADMIN_URL:-http://127.0.0.1:8080}
  else
    pulsar=$(env -u PULSAR_URL "$here/pulsar.sh" url)
    admin=$(env -u PULSAR_URL "$here/pulsar.sh" admin-url)
  fi
  printf 'export DATABASE_URL=%s\n' "$(q "$db")"
  printf 'export OUTBOX_PGBOUNCER_URL=%s\n' "$(q "${OUTBOX_PGBOUNCER_URL:-$(DATABASE_URL=$db "$here/pgbouncer.sh" url)}")"
  printf 'export PULSAR_URL=%s\n' "$(q "$pulsar")"
  printf 'export PULSAR_ADMIN_URL=%s\n' "$(q "$admin")"
  printf 'export OUTBOX_PG_MANAGED=%s\n' "$pg_managed"
  printf 'export OUTBOX_PULSAR_MANAGED=%s\n' "$pulsar_managed"
}

case "${1:-}" in
  up)
    "$here/pg.sh" up
    "$here/pgbouncer.sh" up
    "$here/pulsar.sh" up
    ;;
  down)
    "$here/pulsar.sh" down
    "$here/pgbouncer.sh" down
    "$here/pg.sh" down
    ;;
  status)
    rc=0
    "$here/pg.sh" status || rc=$?
    "$here/pgbouncer.sh" status || rc=$?
    "$here/pulsar.sh" status || rc=$?
    exit "$rc"
    ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
