#!/usr/bin/env bash
# Enqueue cost: outbox_enqueue (validation, per-key advisory lock, sequence, insert)
# against a plain INSERT of the same row (same slot, so the same primary-key pages:
# inserting every plain row at slot 0 made that baseline ~25% faster than any real one), with 8 concurrent writers on distinct keys,
# measured with pgbench in the same run, in a throwaway database. Statements are sent
# prepared (-M prepared), as drivers and diesel send them: in pgbench's default simple mode
# the plain INSERT was planned at every call while the function's statements are cached,
# which flattered the function by ~5 points.
#
# Shapes: one event per transaction (commit-bound, what most services do) and 100
# events per transaction (CPU-bound: the function's own cost shows), the latter both as
# 100 outbox_enqueue calls and as one outbox_enqueue_batch call (the Rust enqueue_batch).
# Usage: [ROUNDS=3] scripts/bench/enqueue.sh [seconds per run, default 15]
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
  tps=$("$PGBENCH" -M prepared -n -c 8 -j 2 -T "$SECS" -f "$work/$1" "$bench_url" 2>/dev/null | awk '/^tps = / {print $3}')
  awk -v t="$tps" -v r="$2" 'BEGIN {printf "%.0f", t * r}'
}

# The machine is shared and noisy: one plain run and one enqueue run minutes apart once
# differed by 25 points from a second pair. So each shape runs as ROUNDS interleaved pairs
# (plain, then enqueue, back to back) and the cost reported is the median of the pairs'
# ratios, with the spread, so that a drift of the machine hits both sides of a pair.
ROUNDS=${ROUNDS:-3}
echo "enqueue bench: 8 writers, distinct keys, 256-byte payloads, ${SECS} s per run, ${ROUNDS} interleaved rounds (pgbench)" >&2
median() { tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END {printf "%s", v[int((NR+1)/2)]}'; }
# shape label, plain script, enqueue script, rows per transaction
shape() {
  local label=$1 plain=$2 enq=$3 rows=$4 i p e ps="" es="" costs=""
  for ((i = 1; i <= ROUNDS; i++)); do
    p=$(run "$plain" "$rows"); e=$(run "$enq" "$rows")
    ps="$ps $p"; es="$es $e"
    costs="$costs $(awk -v p="$p" -v e="$e" 'BEGIN {printf "%.1f", 100 * (1 - e / p)}')"
    echo "  $label, round $i: plain $p, enqueue $e events/s" >&2
  done
  local sorted
  sorted=$(echo $costs | tr ' ' '\n' | sort -g | tr '\n' ' ')
  echo "| $label | $(echo $ps | median) | $(echo $es | median) | $(echo $costs | median) % (rounds: ${sorted% }) |"
}
echo "| shape | plain INSERT events/s (median) | outbox_enqueue events/s (median) | cost of enqueue (median of the rounds) |"
echo "| --- | ---: | ---: | ---: |"
shape "1 event per transaction" plain1.sql enqueue1.sql 1
shape "100 events per transaction, outbox_enqueue x100" plain100.sql enqueue100.sql 100
shape "100 events per transaction, one outbox_enqueue_batch (what enqueue_batch calls)" plain100.sql batch100.sql 100
rm -rf "$work"
