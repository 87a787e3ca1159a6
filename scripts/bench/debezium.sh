#!/usr/bin/env bash
# The log-based alternative, measured on this machine: CPU per event of Debezium's
# outbox relay (PostgreSQL connector over pgoutput, outbox event router, Pulsar sink;
# benches/debezium) against the relay's, at the same steady rate, on the same services,
# in one run.
#
#   scripts/bench/debezium.sh [SECS]      (default 30 s of load per phase)
#
# Phases:
#   1. Debezium: a throwaway database with the outbox schema, a publication of
#      outbox_event (publish_via_partition_root), Debezium started on it and warmed up
#      (10 s of load), then SECS s of RATE events/s written by pgbench through
#      outbox_enqueue_batch (EVENTS_PER_TX events per transaction, 256-byte payloads,
#      distinct keys). CPU is read from /proc for Debezium's JVM and for the WAL sender
#      that decodes for it, from the start of the load until Debezium has published
#      every event written.
#   2. The relay: `outbox-load --mode steady` at the same rate and transaction shape,
#      with `partitions = 1` and with the default; its report splits the CPU into the
#      relay and the PostgreSQL sessions serving it.
#
# Debezium needs wal_level = logical and a role with REPLICATION: the script sets both
# for phase 1 (ALTER SYSTEM and a restart of the test cluster) and puts them back before
# phase 2, so the relay is measured as it normally runs. Environment: RATE (5000),
# EVENTS_PER_TX (10), PARTITIONS ("1 4").
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/services/services.sh env)"

SECS=${1:-30}
# The relay's latency leaves out its first 5 s (its start), so a phase must be longer.
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -gt 5 ] || { echo "debezium bench: SECS must be a whole number of seconds above 5, got '$SECS'" >&2; exit 2; }
RATE=${RATE:-5000}
EVENTS_PER_TX=${EVENTS_PER_TX:-10}
PARTITIONS=${PARTITIONS:-1 4}
WARMUP_SECS=10
PG_PORT=${OUTBOX_PG_PORT:-55432}
# The script restarts the cluster and changes a role: only the project's own cluster.
[ "${OUTBOX_PG_MANAGED:-}" = 1 ] || { echo "debezium bench: DATABASE_URL points at a PostgreSQL of your own; this bench restarts the cluster and alters its role, so it runs only on the one scripts/services/pg.sh manages (unset DATABASE_URL)" >&2; exit 2; }
# As scripts/services/pg.sh chooses it.
PG_VERSION=${OUTBOX_PG_VERSION:-$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' | awk -F/ '{print $5}' | sort -n | tail -1)}
PGBENCH=$(command -v pgbench || echo "/usr/lib/postgresql/$PG_VERSION/bin/pgbench")
[ -x "$PGBENCH" ] || { echo "debezium bench: pgbench not found (Debian package postgresql-client)" >&2; exit 1; }
db="outbox_bench_dbz_$$"
slot="outbox_bench_dbz_$$"
admin_url=$DATABASE_URL
bench_url="${DATABASE_URL%/*}/$db"
work=$(mktemp -d)
dbz_pid=""

su_psql() { (cd / && runuser -u postgres -- psql -X -h /var/run/postgresql -p "$PG_PORT" -v ON_ERROR_STOP=1 -Atq "$@"); }
log() { echo "debezium bench: $*" >&2; }
restart_pg() { pg_ctlcluster "$PG_VERSION" outbox restart >&2 </dev/null; until su_psql -c 'select 1' >/dev/null 2>&1; do sleep 0.2; done; }
restore_pg() {
  if [ "$(su_psql -c 'show wal_level')" != replica ] || [ "$(su_psql -c "select rolreplication from pg_roles where rolname = 'outbox'")" = t ]; then
    su_psql -c "ALTER ROLE outbox NOREPLICATION" -c "ALTER SYSTEM RESET wal_level"
    restart_pg
  fi
}
cleanup() {
  [ -n "$dbz_pid" ] && kill "$dbz_pid" 2>/dev/null && wait "$dbz_pid" 2>/dev/null
  su_psql -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null 2>&1 || true
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  restore_pg || true
  rm -rf "$work"
}
trap cleanup EXIT

# CPU seconds (user + system) of a process, from /proc.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
published() { cat "$work/count" 2>/dev/null || echo 0; }
written() { psql -Atq "$bench_url" -c "SELECT count(*) FROM outbox_event"; }
wait_published() { # events -> waits until Debezium has published that many (at most 120 s)
  local deadline=$((SECONDS + 120))
  while [ "$(published)" -lt "$1" ]; do
    [ $SECONDS -lt $deadline ] || { log "Debezium published $(published) of $1 events in 120 s"; exit 1; }
    kill -0 "$dbz_pid" 2>/dev/null || { log "Debezium exited; its log: $work/debezium.log"; tail -20 "$work/debezium.log" >&2; exit 1; }
    sleep 0.05
  done
}
load() { # seconds
  local tx_rate=$((RATE / EVENTS_PER_TX))
  "$PGBENCH" -M prepared -n -c 4 -j 2 -R "$tx_rate" -T "$1" -f "$work/batch.sql" "$bench_url" >"$work/pgbench.log" 2>&1 \
    || { log "pgbench failed:"; cat "$work/pgbench.log" >&2; exit 1; }
}

log "building benches/debezium (Maven)"
(cd benches/debezium && mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >&2)
cargo build --release -q -p outbox-engine --features cli --bin outbox-relay
cargo build --release -q -p outbox-load

log "wal_level = logical and REPLICATION for the role outbox (restarting the test cluster)"
su_psql -c "ALTER SYSTEM SET wal_level = logical" -c "ALTER ROLE outbox REPLICATION"
restart_pg
psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
target/release/outbox-relay --database-url "$bench_url" migrate >/dev/null
psql -q "$bench_url" -c "CREATE PUBLICATION outbox_bench_dbz FOR TABLE outbox_event WITH (publish_via_partition_root = true)"

cat >"$work/batch.sql" <<SQL
\set k random(1, 1000000000)
SELECT cardinality(outbox_enqueue_batch(array_agg('k' || :client_id || '-' || :k || '-' || i), array_agg('persistent://public/default/outbox-bench-dbz-$$'::text), array_agg('LoadTick'::text), array_agg(convert_to(repeat('x', 256), 'UTF8')), array_agg('{}'::jsonb))) FROM generate_series(1, $EVENTS_PER_TX) i;
SQL

DBZ_PG_HOST=127.0.0.1 DBZ_PG_PORT=$PG_PORT DBZ_PG_USER=outbox DBZ_PG_PASSWORD=outbox DBZ_PG_DB=$db \
  DBZ_SLOT=$slot DBZ_PUBLICATION=outbox_bench_dbz DBZ_OFFSETS=$work/offsets.dat DBZ_COUNT_FILE=$work/count \
  DBZ_PULSAR_URL=$PULSAR_URL \
  java -cp "benches/debezium/target/classes:$(cat benches/debezium/target/classpath.txt)" \
  outbox.bench.DebeziumOutboxBaseline >"$work/debezium.log" 2>&1 &
dbz_pid=$!
deadline=$((SECONDS + 120))
until [ "$(su_psql -d "$db" -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")" = t ]; do
  [ $SECONDS -lt $deadline ] || { log "Debezium did not start streaming in 120 s"; tail -20 "$work/debezium.log" >&2; exit 1; }
  kill -0 "$dbz_pid" 2>/dev/null || { log "Debezium exited"; tail -20 "$work/debezium.log" >&2; exit 1; }
  sleep 0.5
done
walsender() { su_psql -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$slot'"; }

log "warming up: ${WARMUP_SECS} s at $RATE events/s"
load "$WARMUP_SECS"
wait_published "$(written)"
before=$(written)
# Read after the warm-up: Debezium may open the slot on one connection and stream on
# another, and only the streaming WAL sender does the decoding.
walsender=$(walsender)
dbz0=$(cpu_s "$dbz_pid"); wal0=$(cpu_s "$walsender"); t0=$(date +%s.%N)
log "measuring: ${SECS} s at $RATE events/s"
load "$SECS"
after=$(written)
wait_published "$after"
dbz1=$(cpu_s "$dbz_pid"); wal1=$(cpu_s "$walsender"); t1=$(date +%s.%N)
[ "$(walsender)" = "$walsender" ] || { log "the WAL sender changed during the measurement (Debezium reconnected); run again"; exit 1; }
rss_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$dbz_pid/status")
events=$((after - before))
awk -v e="$events" -v d0="$dbz0" -v d1="$dbz1" -v w0="$wal0" -v w1="$wal1" -v t0="$t0" -v t1="$t1" -v rss="$rss_mb" -v rate="$RATE" 'BEGIN {
  d = d1 - d0; w = w1 - w0
  printf "Debezium 3.6.1 (embedded engine, pgoutput, outbox router, Pulsar sink), %d events at %d/s over %.1f s:\n", e, rate, t1 - t0
  printf "  Debezium JVM %.2f CPU-s, WAL sender %.2f CPU-s; per 100k events: %.2f + %.2f = %.2f CPU-s; peak RSS %d MB\n",
    d, w, 1e5 * d / e, 1e5 * w / e, 1e5 * (d + w) / e, rss
}'

kill "$dbz_pid"; wait "$dbz_pid" 2>/dev/null || true; dbz_pid=""
su_psql -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
log "restoring wal_level = replica for the relay's phase"
restore_pg

for p in $PARTITIONS; do
  log "the relay, partitions = $p: ${SECS} s at $RATE events/s"
  target/release/outbox-load load --mode steady --duration "$SECS" --rate "$RATE" --warmup 5 \
    --events-per-tx "$EVENTS_PER_TX" --skip-baselines --relay-set "partitions=$p" --json >"$work/relay-$p.json" 2>"$work/relay-$p.log" \
    || { log "outbox-load failed:"; tail -30 "$work/relay-$p.log" >&2; exit 1; }
  python3 - "$work/relay-$p.json" "$p" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
steady = summary["steady"]
cpu, events = steady["cpu"], steady["committed"]
relay, sessions = cpu["relay_s"], cpu["relay_postgres_s"]
latency = steady.get("latency") or {}
print(f"relay, partitions = {sys.argv[2]}, {events} events at {steady['offered_rate']}/s over {cpu['seconds']:.1f} s (relay start included):")
print(f"  relay {relay:.2f} CPU-s, PostgreSQL sessions serving it {sessions:.2f} CPU-s; per 100k events: "
      f"{1e5 * relay / events:.2f} + {1e5 * sessions / events:.2f} = {1e5 * (relay + sessions) / events:.2f} CPU-s; "
      f"peak RSS {steady['relay_peak_rss_mb']:.0f} MB")
if latency:
    print(f"  latency after a 5 s warm-up: p50 {latency.get('p50_ms', float('nan')):.1f} ms, p99 {latency.get('p99_ms', float('nan')):.1f} ms; "
          f"lost {steady['checks']['lost']}, reordered {steady['checks']['reordered']}, duplicated {steady['checks']['duplicated']}")
PY
done
