#!/usr/bin/env bash
# PgBouncer in transaction pooling mode, in front of the test PostgreSQL, for
# engine/tests/pgbouncer.rs.
#
#   scripts/services/pgbouncer.sh up|down|status|url
#
# Which PgBouncer: Debian's package source of pgbouncer 1.24.1 (Debian 13's version,
# from deb.debian.org's pool, checked against its SHA-256), built once into
# $OUTBOX_CACHE_DIR/pgbouncer-1.24.1. Debian 12's own binary package is 1.18, which
# cannot keep prepared statements in transaction mode (that needs 1.21 or later,
# `max_prepared_statements`), and the relay, like every diesel-async user, prepares
# its statements.
#
# It listens on 127.0.0.1:$OUTBOX_PGBOUNCER_PORT (default 56432), pools in
# transaction mode with only 2 server connections per database and user (so client
# sessions share server connections, as behind a real pooler), and forwards every
# database name to the PostgreSQL of `pg.sh url` (or DATABASE_URL). Users: outbox
# and outbox_writer (password outbox). With OUTBOX_PGBOUNCER_URL set to another
# address, nothing is started and the tests use that one.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SVC_NAME=pgbouncer
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PGB_VERSION=1.24.1
PGB_SHA256=da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0
PGB_SOURCE_URL=${OUTBOX_PGBOUNCER_SOURCE_URL:-http://deb.debian.org/debian/pool/main/p/pgbouncer/pgbouncer_$PGB_VERSION.orig.tar.gz}
PGB_PORT=${OUTBOX_PGBOUNCER_PORT:-56432}
PGB_HOME=$OUTBOX_CACHE_DIR/pgbouncer-$PGB_VERSION
PGB_BIN=$PGB_HOME/bin/pgbouncer
# Run files live where the postgres user can reach them (the cache is under root's
# home, which it cannot enter): the binary is copied there too.
PGB_RUN=${OUTBOX_PGBOUNCER_RUN_DIR:-/var/lib/postgresql/outbox-pgbouncer}
PGB_RUN_BIN=$PGB_RUN/pgbouncer
PGB_LOG=$PGB_RUN/pgbouncer.log
PGB_PID=$PGB_RUN/pgbouncer.pid
PGB_WAIT_SECS=30

backend_url() {
  if [ -n "${DATABASE_URL:-}" ]; then
    printf '%s\n' "$DATABASE_URL"
  else
    "$here/pg.sh" url
  fi
}

# The URL clients use: the backend's user, password and database, PgBouncer's port.
local_url() {
  backend_url | sed -E "s#@[^/@]+/#@127.0.0.1:$PGB_PORT/#"
}

ensure_built() {
  [ -x "$PGB_BIN" ] && return 0
  command -v cc >/dev/null 2>&1 || svc_apt_install gcc
  command -v make >/dev/null 2>&1 || svc_apt_install make
  command -v pkg-config >/dev/null 2>&1 || svc_apt_install pkgconf
  dpkg -s libevent-dev >/dev/null 2>&1 || svc_apt_install libevent-dev
  dpkg -s libssl-dev >/dev/null 2>&1 || svc_apt_install libssl-dev
  local work
  work=$(mktemp -d)
  svc_log "building PgBouncer $PGB_VERSION from $PGB_SOURCE_URL (once, ~15 s)"
  curl -fsSL --retry 3 -o "$work/src.tgz" "$PGB_SOURCE_URL" \
    || svc_die "cannot download $PGB_SOURCE_URL"
  echo "$PGB_SHA256  $work/src.tgz" | sha256sum -c --quiet - \
    || svc_die "checksum mismatch for $PGB_SOURCE_URL"
  tar xzf "$work/src.tgz" -C "$work"
  (
    cd "$work/pgbouncer-$PGB_VERSION"
    ./configure --prefix="$PGB_HOME" --without-cares >"$work/build.log" 2>&1
    make -j2 >>"$work/build.log" 2>&1
    make install >>"$work/build.log" 2>&1
  ) || { tail -n 30 "$work/build.log" >&2; svc_die "building PgBouncer failed (log above)"; }
  rm -rf "$work"
  [ -x "$PGB_BIN" ] || svc_die "PgBouncer built but $PGB_BIN is missing"
}

# PgBouncer refuses to run as root: it runs as postgres, from files postgres can read.
write_config() {
  local backend host port
  backend=$(backend_url)
  host=$(printf '%s' "$backend" | sed -E 's#^[a-z]+://([^@]*@)?([^:/?]+).*#\2#')
  port=$(printf '%s' "$backend" | sed -E 's#^[a-z]+://([^@]*@)?[^:/?]+:([0-9]+).*#\2#')
  case "$port" in ''|*[!0-9]*) port=5432 ;; esac
  install -d -o postgres -g postgres -m 0750 "$PGB_RUN"
  install -o postgres -g postgres -m 0755 "$PGB_BIN" "$PGB_RUN_BIN"
  cat >"$PGB_RUN/pgbouncer.ini" <<EOF
; Written by scripts/services/pgbouncer.sh on every 'up'. Do not edit.
[databases]
* = host=$host port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGB_RUN/userlist.txt
pool_mode = transaction
; Few server connections: client sessions must share them, as behind a real pooler.
default_pool_size = 2
max_client_conn = 500
; Protocol-level named prepared statements (tokio-postgres's s0, s1, ...) tracked per
; client and re-prepared on whichever server connection runs them (1.21+).
max_prepared_statements = 200
ignore_startup_parameters = extra_float_digits
logfile = $PGB_LOG
pidfile = $PGB_PID
admin_users = outbox
EOF
  printf '"outbox" "outbox"\n"outbox_writer" "outbox"\n' >"$PGB_RUN/userlist.txt"
  chown postgres:postgres "$PGB_RUN/pgbouncer.ini" "$PGB_RUN/userlist.txt"
  chmod 0600 "$PGB_RUN/userlist.txt"
}

running() {
  [ -f "$PGB_PID" ] && kill -0 "$(cat "$PGB_PID")" 2>/dev/null
}

answers() {
  PGCONNECT_TIMEOUT=5 psql "$(local_url)" -XAtqc 'select 1' >/dev/null 2>&1 </dev/null
}

up() {
  if [ -n "${OUTBOX_PGBOUNCER_URL:-}" ] && [ "$OUTBOX_PGBOUNCER_URL" != "$(local_url)" ]; then
    svc_log "OUTBOX_PGBOUNCER_URL is set; using that PgBouncer, nothing started"
    return 0
  fi
  svc_lock pgbouncer
  ensure_built
  write_config
  if running; then
    # Reread the configuration (it may have changed) without dropping clients.
    kill -HUP "$(cat "$PGB_PID")"
  else
    if svc_port_open "$PGB_PORT"; then
      svc_port_owner "$PGB_PORT" >&2 || true
      svc_die "port $PGB_PORT is taken by something else; set OUTBOX_PGBOUNCER_PORT"
    fi
    svc_log "starting PgBouncer $PGB_VERSION on 127.0.0.1:$PGB_PORT (log: $PGB_LOG)"
    (svc_closefds; cd / && exec runuser -u postgres -- "$PGB_RUN_BIN" -d "$PGB_RUN/pgbouncer.ini") \
      >&2 </dev/null || { tail -n 20 "$PGB_LOG" >&2 || true; svc_die "PgBouncer did not start"; }
  fi
  local deadline=$(( $(svc_now) + PGB_WAIT_SECS ))
  until answers; do
    if [ "$(svc_now)" -ge "$deadline" ]; then
      tail -n 20 "$PGB_LOG" >&2 || true
      svc_die "PgBouncer does not answer 'select 1' at 127.0.0.1:$PGB_PORT within ${PGB_WAIT_SECS} s"
    fi
    sleep 1
  done
  svc_log "ready: $(local_url | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')"
}

down() {
  svc_lock pgbouncer
  if running; then
    svc_log "stopping PgBouncer"
    kill -INT "$(cat "$PGB_PID")" || true
  else
    svc_log "PgBouncer is not running"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if running && answers; then svc_log "running and answering on 127.0.0.1:$PGB_PORT"; else
      svc_log "not answering on 127.0.0.1:$PGB_PORT"; exit 3; fi
    ;;
  url) local_url ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac
