#!/usr/bin/env bash
# Enqueue cost: outbox_enqueue (validation, per-key advisory lock, sequence, insert)
# against a plain INSERT of the same row (same slot, so the same primary-key pages:
# inserting every plain row at slot 0 made that baseline ~25% faster than any real one), with 8 concurrent writers on distinct keys,
# measured with pgbench in the same run, in a throwaway database.
#
# Shapes: one event per transaction (commit-bound, what most services do) and 100
# events per transaction (CPU-bound: the function's own cost shows), the latter both as
# 100 outbox_enqueue calls and as one outbox_enqueue_batch call (the Rust enqueue_batch).
# Usage: scripts/bench/enqueue.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/services/services.sh env)"
SECS=${1:-15}
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)
[ -x "$PGBENCH" ] || { echo "enqueue bench: pgbench not found (Debian package postgresql-client)" >&2; exit 1; }
db="outbox_bench_enqueue_$$"
admin_url=$DATABASE_URL
bench_url="${DATABASE_URL%/*}/$db"
psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
cargo run --release -q -p outbox-engine --features cli --bin outbox-relay -- --database-url "$bench_url" migrate >/dev/null

work=$(mktemp -d)
payload="convert_to(repeat('x', 256), 'UTF8')"
cat >"$work/plain1.sql" <<SQL
\set k random(1, 100000000)
INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload) VALUES (outbox_slot('w' || :client_id || '-' || :k), nextval('outbox_seq'), 'w' || :client_id || '-' || :k, 'bench', 'Bench', $payload);
SQL
cat >"$work/enqueue1.sql" <<SQL
\set k random(1, 100000000)
SELECT outbox_enqueue('w' || :client_id || '-' || :k, 'bench', 'Bench', $payload);
SQL
cat >"$work/plain100.sql" <<SQL
\set k random(1, 100000000)
INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload) SELECT outbox_slot('w' || :client_id || '-' || :k || '-' || i), nextval('outbox_seq'), 'w' || :client_id || '-' || :k || '-' || i, 'bench', 'Bench', $payload FROM generate_series(1, 100) i;
SQL
cat >"$work/enqueue100.sql" <<SQL
\set k random(1, 100000000)
SELECT count(outbox_enqueue('w' || :client_id || '-' || :k || '-' || i, 'bench', 'Bench', $payload)) FROM generate_series(1, 100) i;
SQL

cat >"$work/batch100.sql" <<SQL
\set k random(1, 100000000)
SELECT cardinality(outbox_enqueue_batch(array_agg('w' || :client_id || '-' || :k || '-' || i), array_agg('bench'::text), array_agg('Bench'::text), array_agg($payload), array_agg('{}'::jsonb))) FROM generate_series(1, 100) i;
SQL

run() { # script rows_per_tx -> events/s
  psql -q "$bench_url" -c "TRUNCATE outbox_event" >/dev/null
  psql -q "$bench_url" -c "CHECKPOINT" >/dev/null 2>&1 || true
  local tps
  tps=$("$PGBENCH" -n -c 8 -j 2 -T "$SECS" -f "$work/$1" "$bench_url" 2>/dev/null | awk '/^tps = / {print $3}')
  awk -v t="$tps" -v r="$2" 'BEGIN {printf "%.0f", t * r}'
}

echo "enqueue bench: 8 writers, distinct keys, 256-byte payloads, ${SECS} s per run (pgbench)" >&2
p1=$(run plain1.sql 1); e1=$(run enqueue1.sql 1)
p100=$(run plain100.sql 100); e100=$(run enqueue100.sql 100); b100=$(run batch100.sql 100)
cost() { awk -v p="$1" -v e="$2" 'BEGIN {printf "%.1f", 100 * (1 - e / p)}'; }
echo "| shape | plain INSERT events/s | outbox_enqueue events/s | cost of enqueue |"
echo "| --- | ---: | ---: | ---: |"
echo "| 1 event per transaction | $p1 | $e1 | $(cost "$p1" "$e1") % |"
echo "| 100 events per transaction, outbox_enqueue x100 | $p100 | $e100 | $(cost "$p100" "$e100") % |"
echo "| 100 events per transaction, one outbox_enqueue_batch (what enqueue_batch calls) | $p100 | $b100 | $(cost "$p100" "$b100") % |"
rm -rf "$work"
