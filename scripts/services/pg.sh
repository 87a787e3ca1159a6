#!/usr/bin/env bash
# PostgreSQL for tests and benchmarks.
#
#   scripts/services/pg.sh up|down|status|url
#
# With DATABASE_URL set (and not exported by `services.sh env` itself): starts
# nothing; `up` only waits (bounded) until `select 1` answers on that URL.
#
# Otherwise: installs PostgreSQL from Debian packages if missing, creates (once)
# a dedicated cluster "outbox" with Debian's tools (pg_createcluster), listening
# on 127.0.0.1:$OUTBOX_PG_PORT only, starts it without systemd (pg_ctlcluster),
# and makes sure role outbox/outbox (LOGIN CREATEDB) and database outbox exist.
# Resulting URL: postgres://outbox:outbox@127.0.0.1:55432/outbox
# `down` stops the cluster and keeps its data.
#
# Environment:
#   DATABASE_URL          use this database instead of the local cluster
#   OUTBOX_PG_PORT        port of the local cluster (default 55432)
#   OUTBOX_PG_VERSION     PostgreSQL major version (default: newest installed;
#                         15 on Debian 12)
#   OUTBOX_PG_WAIT_SECS   how long `up` waits for a query to answer (default 60)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SVC_NAME=pg
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT=${OUTBOX_PG_PORT:-55432}
PG_CLUSTER=outbox
PG_WAIT_SECS=${OUTBOX_PG_WAIT_SECS:-60}
PG_USER=outbox
PG_PASSWORD=outbox
PG_DB=outbox
PG_RUNDIR=/var/run/postgresql
LOCAL_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
# TLS material for the TLS tests (engine/tests/tls.rs): a CA, a server certificate for
# 127.0.0.1 / localhost, and a client certificate for the role outbox_cert.
PG_TLS_DIR=${OUTBOX_PG_TLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outbox-engine/pg-tls}

# Settings for a 2-core / 24 GiB box. Durability stays ON: we measure honestly.
pg_settings() {
  cat <<EOF
# Written by scripts/services/pg.sh; rewritten on every 'up'. Do not edit.
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 200
# outbox_enqueue holds one advisory lock per distinct key until commit: room for
# transactions that enqueue for a few thousand keys at once (bulk loads, tests).
max_locks_per_transaction = 256
shared_buffers = 512MB
effective_cache_size = 4GB
maintenance_work_mem = 128MB
work_mem = 8MB
max_wal_size = 2GB
checkpoint_completion_target = 0.9
fsync = on
synchronous_commit = on
full_page_writes = on
# TLS with our own CA (ensure_tls): the TLS-only roles below need it.
ssl = on
ssl_cert_file = '$PG_CONF_DIR/outbox-server.crt'
ssl_key_file = '$PG_CONF_DIR/outbox-server.key'
ssl_ca_file = '$PG_CONF_DIR/outbox-ca.crt'
EOF
}

# A CA, a server certificate (SAN 127.0.0.1, localhost) and a client certificate (CN
# outbox_cert), made once with openssl; the server's copies live beside the cluster's
# configuration, owned by postgres.
ensure_tls() {
  install -d -m 0755 "$PG_TLS_DIR"
  if [ ! -f "$PG_TLS_DIR/client.key" ]; then
    svc_log "making TLS certificates in $PG_TLS_DIR"
    (
      cd "$PG_TLS_DIR"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=outbox test CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out server.crt 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=outbox_cert" -keyout client.key -out client.csr 2>/dev/null
      openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -out client.crt 2>/dev/null
      chmod 0600 client.key
    ) || svc_die "openssl could not make the TLS certificates in $PG_TLS_DIR"
  fi
  install -o postgres -g postgres -m 0644 "$PG_TLS_DIR/server.crt" "$PG_CONF_DIR/outbox-server.crt"
  install -o postgres -g postgres -m 0600 "$PG_TLS_DIR/server.key" "$PG_CONF_DIR/outbox-server.key"
  install -o postgres -g postgres -m 0644 "$PG_TLS_DIR/ca.crt" "$PG_CONF_DIR/outbox-ca.crt"
}

# Client authentication rules of ours, ahead of Debian's defaults: outbox_tls may
# connect only over TLS (password), outbox_cert only with a client certificate.
PG_HBA_MARK="# outbox-engine TLS rules (scripts/services/pg.sh)"
ensure_hba() {
  local hba=$PG_CONF_DIR/pg_hba.conf
  grep -qF "$PG_HBA_MARK" "$hba" && return 1
  local tmp
  tmp=$(mktemp)
  {
    printf '%s\n' "$PG_HBA_MARK"
    printf 'hostnossl all outbox_tls  127.0.0.1/32 reject\n'
    printf 'hostssl   all outbox_tls  127.0.0.1/32 scram-sha-256\n'
    printf 'hostnossl all outbox_cert 127.0.0.1/32 reject\n'
    printf 'hostssl   all outbox_cert 127.0.0.1/32 cert\n'
    cat "$hba"
  } >"$tmp"
  install -o postgres -g postgres -m 0640 "$tmp" "$hba"
  rm -f "$tmp"
  return 0
}

# ---------------------------------------------------------------- external DB
wait_for_url() { # url seconds what
  local url=$1 secs=$2 what=$3 deadline out
  deadline=$(( $(svc_now) + secs ))
  while :; do
    if out=$(PGCONNECT_TIMEOUT=5 psql "$url" -XAtqc 'select 1' 2>&1 </dev/null); then
      return 0
    fi
    if [ "$(svc_now)" -ge "$deadline" ]; then
      printf '\n' >&2
      svc_log "last error: $out"
      svc_die "PostgreSQL ($what) did not answer 'select 1' within ${secs} s"
    fi
    printf '.' >&2
    sleep 1
  done
}

ensure_psql() {
  command -v psql >/dev/null 2>&1 || svc_apt_install postgresql-client
}

external() {
  local redacted
  redacted=$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')
  case "$1" in
    up|status)
      ensure_psql
      wait_for_url "$DATABASE_URL" "$([ "$1" = up ] && echo "$PG_WAIT_SECS" || echo 5)" \
        "DATABASE_URL=$redacted"
      svc_log "DATABASE_URL answers ($redacted); nothing started"
      ;;
    down) svc_log "DATABASE_URL is set; not stopping an external database" ;;
    url) printf '%s\n' "$DATABASE_URL" ;;
  esac
}

# ---------------------------------------------------------------- local cluster
pg_version() {
  if [ -n "${OUTBOX_PG_VERSION:-}" ]; then echo "$OUTBOX_PG_VERSION"; return; fi
  local v
  v=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null \
      | awk -F/ '{print $5}' | sort -n | tail -1)
  echo "$v"
}

ensure_installed() {
  PG_VERSION=$(pg_version)
  if [ -z "$PG_VERSION" ] || ! command -v pg_createcluster >/dev/null 2>&1 \
     || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
    svc_apt_install postgresql postgresql-contrib
    PG_VERSION=$(pg_version)
    if [ -z "$PG_VERSION" ] || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
      svc_die "PostgreSQL server still not found after apt-get install"
    fi
  fi
  command -v psql >/dev/null 2>&1 || svc_apt_install postgresql-client
  # The TLS certificates of the test cluster (ensure_tls).
  command -v openssl >/dev/null 2>&1 || svc_apt_install openssl
  PG_CONF_DIR=/etc/postgresql/$PG_VERSION/$PG_CLUSTER
  PG_LOG=/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log
}

cluster_exists() { [ -f "$PG_CONF_DIR/postgresql.conf" ]; }

cluster_online() {
  cluster_exists && pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1
}

# Run psql as the postgres superuser over the Unix socket (peer auth).
su_psql() {
  (cd / && runuser -u postgres -- psql -X -h "$PG_RUNDIR" -p "$PG_PORT" \
     -v ON_ERROR_STOP=1 -Atq "$@")
}

fail_with_log() {
  svc_log "$1"
  if [ -f "$PG_LOG" ]; then
    svc_log "last lines of $PG_LOG:"
    tail -n 20 "$PG_LOG" | sed 's/^/    /' >&2
  fi
  svc_die "PostgreSQL (cluster $PG_VERSION/$PG_CLUSTER) failed; see $PG_LOG"
}

ensure_port_is_ours() {
  # Called only when our cluster is not running.
  if svc_port_open "$PG_PORT"; then
    svc_log "127.0.0.1:$PG_PORT is already in use by something that is not the $PG_CLUSTER cluster:"
    svc_port_owner "$PG_PORT" >&2 || true
    svc_die "port $PG_PORT taken; stop that process, or set OUTBOX_PG_PORT, or set DATABASE_URL to use an existing database"
  fi
}

up() {
  svc_lock pg
  ensure_installed
  install -d -o postgres -g postgres -m 2775 "$PG_RUNDIR"

  if ! cluster_exists; then
    ensure_port_is_ours
    svc_log "creating cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" \
      --encoding UTF8 --locale C.UTF-8 --start-conf manual >&2 \
      || svc_die "pg_createcluster $PG_VERSION $PG_CLUSTER failed"
  fi

  # Settings: Debian's postgresql.conf includes conf.d/ last, so ours win.
  grep -qE "^include_dir = 'conf.d'" "$PG_CONF_DIR/postgresql.conf" \
    || echo "include_dir = 'conf.d'" >>"$PG_CONF_DIR/postgresql.conf"
  # Keep postgresql.conf's own port in sync too (pg_lsclusters/pg_ctlcluster read it).
  if [ "$(pg_conftool -s "$PG_VERSION" "$PG_CLUSTER" show port 2>/dev/null)" != "$PG_PORT" ]; then
    pg_conftool "$PG_VERSION" "$PG_CLUSTER" set port "$PG_PORT"
  fi
  install -d -o postgres -g postgres "$PG_CONF_DIR/conf.d"
  ensure_tls
  local conf=$PG_CONF_DIR/conf.d/50-outbox.conf changed=0
  if ensure_hba; then
    changed=1
  fi
  if [ "$(pg_settings)" != "$(cat "$conf" 2>/dev/null)" ]; then
    pg_settings >"$conf"
    chown postgres:postgres "$conf"
    changed=1
  fi

  if cluster_online; then
    if [ "$changed" = 1 ]; then
      svc_log "settings changed; restarting cluster $PG_VERSION/$PG_CLUSTER"
      (svc_closefds; exec pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart) >&2 </dev/null \
        || fail_with_log "pg_ctlcluster restart failed"
    fi
  else
    ensure_port_is_ours
    svc_log "starting cluster $PG_VERSION/$PG_CLUSTER (log: $PG_LOG)"
    (svc_closefds; exec pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start) >&2 </dev/null \
      || fail_with_log "pg_ctlcluster start failed"
  fi

  # Bounded wait for the server itself (superuser over the Unix socket).
  local deadline out
  deadline=$(( $(svc_now) + PG_WAIT_SECS ))
  until out=$(su_psql -c 'select 1' 2>&1 </dev/null); do
    if [ "$(svc_now)" -ge "$deadline" ]; then
      printf '\n' >&2
      fail_with_log "no answer within ${PG_WAIT_SECS} s (last error: $out)"
    fi
    printf '.' >&2
    sleep 1
  done

  # Role and database, idempotently. CREATEDB: tests create throwaway databases.
  su_psql <<SQL || fail_with_log "could not create role/database"
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER;
  END IF;
END\$\$;
ALTER ROLE $PG_USER WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
-- TLS-only roles for engine/tests/tls.rs, acting as the owner role of test databases.
SET client_min_messages TO warning;
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outbox_tls') THEN
    CREATE ROLE outbox_tls;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outbox_cert') THEN
    CREATE ROLE outbox_cert;
  END IF;
  -- A writer with nothing but what outbox_grant_writer gives (engine/tests/roles.rs).
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outbox_writer') THEN
    CREATE ROLE outbox_writer;
  END IF;
  -- A relay with nothing but what outbox_grant_relay gives (engine/tests/roles.rs).
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outbox_relay') THEN
    CREATE ROLE outbox_relay;
  END IF;
END\$\$;
ALTER ROLE outbox_writer WITH LOGIN PASSWORD '$PG_PASSWORD';
ALTER ROLE outbox_relay WITH LOGIN PASSWORD '$PG_PASSWORD';
ALTER ROLE outbox_tls WITH LOGIN PASSWORD '$PG_PASSWORD';
ALTER ROLE outbox_cert WITH LOGIN;
GRANT $PG_USER TO outbox_tls, outbox_cert;
SQL
  if [ "$(su_psql -c "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
    su_psql -c "CREATE DATABASE $PG_DB OWNER $PG_USER" || fail_with_log "could not create database $PG_DB"
  fi

  # Finally the way clients connect: TCP + password.
  out=$(PGCONNECT_TIMEOUT=5 psql "$LOCAL_URL" -XAtqc 'select 1' 2>&1 </dev/null) \
    || fail_with_log "cannot connect with $LOCAL_URL: $out"
  svc_log "ready: $LOCAL_URL"
}

down() {
  svc_lock pg
  ensure_installed
  if cluster_online; then
    svc_log "stopping cluster $PG_VERSION/$PG_CLUSTER (data kept)"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast >&2 </dev/null \
      || fail_with_log "pg_ctlcluster stop failed"
  else
    svc_log "cluster $PG_VERSION/$PG_CLUSTER is not running"
  fi
}

status() {
  ensure_installed
  if ! cluster_exists; then
    svc_log "cluster $PG_VERSION/$PG_CLUSTER does not exist (run: $0 up)"
    return 3
  fi
  pg_lsclusters "$PG_VERSION" "$PG_CLUSTER" >&2
  if cluster_online && PGCONNECT_TIMEOUT=5 psql "$LOCAL_URL" -XAtqc 'select 1' >/dev/null 2>&1 </dev/null; then
    svc_log "running and answering: $LOCAL_URL (log: $PG_LOG)"
  else
    svc_log "not answering: $LOCAL_URL (log: $PG_LOG)"
    return 3
  fi
}

cmd=${1:-}
case "$cmd" in
  up|down|status|url) ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac

# services.sh env exports DATABASE_URL with OUTBOX_PG_MANAGED=1 when the
# cluster is ours: then keep managing it.
if [ -n "${DATABASE_URL:-}" ] && [ "${OUTBOX_PG_MANAGED:-}" != 1 ]; then
  external "$cmd"
  exit 0
fi

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  url) printf '%s\n' "$LOCAL_URL" ;;
esac
