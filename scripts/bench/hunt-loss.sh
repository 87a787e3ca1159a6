#!/usr/bin/env bash
# Hunts the rare loss seen on 2026-12-06 (docs/reliability.md, "Open defect"): repeats a
# short steady load against a fresh throwaway database until a run loses events, keeps
# that database, and shows (`outbox-relay audit`) where the relay's progress passed
# committed events without publishing them.
#
#   scripts/bench/hunt-loss.sh [RUNS]        (make hunt-loss HUNT_RUNS=40)
#
# Each run: `outbox-load --mode steady` (SECS s at RATE events/s, PARTITIONS ranges,
# RELAY_SET extra relay settings, default idle_poll_min_ms=20 as in both sightings).
# A run that loses nothing has its database dropped; a run that loses events keeps it
# (its name is printed) and prints the partitions and `outbox-relay audit`: each stretch
# of a range's progress that passed events nobody published. Every run's audit must
# agree with the consumer (a clean audit after a loss, or the reverse, also counts as a
# failure). Exits 1 if any run failed, 0 otherwise.
#
# Needs the services of scripts/services/services.sh; RELAY_BIN overrides the relay
# binary (to hunt with a diagnostic build).
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/services/services.sh env)"

RUNS=${1:-20}
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -gt 0 ] || { echo "hunt-loss: RUNS must be a positive whole number, got '$RUNS'" >&2; exit 2; }
SECS=${SECS:-20}
RATE=${RATE:-5000}
PARTITIONS=${PARTITIONS:-4}
RELAY_SET=${RELAY_SET:-idle_poll_min_ms=20}
log() { echo "hunt-loss: $*" >&2; }

cargo build --release -q -p outbox-engine --features cli --bin outbox-relay
cargo build --release -q -p outbox-load
relay_bin=${RELAY_BIN:-target/release/outbox-relay}
settings=(--relay-set "partitions=$PARTITIONS")
for setting in $RELAY_SET; do settings+=(--relay-set "$setting"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lost_runs=0
for run in $(seq 1 "$RUNS"); do
  OUTBOX_RELAY_BIN=$relay_bin target/release/outbox-load load --mode steady --duration "$SECS" \
    --rate "$RATE" --warmup 5 --events-per-tx 10 --skip-baselines "${settings[@]}" --keep --json \
    >"$work/run.json" 2>"$work/run.log" || true
  db=$(grep -o 'outbox_load_[0-9_]*' "$work/run.log" | head -1)
  lost=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['steady']['checks']['lost'])" "$work/run.json" 2>/dev/null || echo "?")
  files=$(grep -o 'files in [^ ,]*' "$work/run.log" | head -1 | cut -d' ' -f3)
  # The relay's own check of its audit trail (outbox-relay audit) must agree with the
  # consumer's count: clean when nothing was lost, the skipped stretches otherwise.
  audit=0
  "$relay_bin" --database-url "${DATABASE_URL%/*}/$db" audit >"$work/audit.txt" 2>&1 || audit=$?
  if [ "$lost" = 0 ]; then
    [ "$audit" = 0 ] || { log "run $run/$RUNS: nothing lost, yet audit exited $audit (kept $db):"; cat "$work/audit.txt" >&2; lost_runs=$((lost_runs + 1)); continue; }
    log "run $run/$RUNS: nothing lost"
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$files"
    continue
  fi
  lost_runs=$((lost_runs + 1))
  log "run $run/$RUNS: LOST $lost events; kept database $db and relay files $files"
  if [ "$lost" = "?" ]; then tail -20 "$work/run.log" >&2; continue; fi
  psql -X "${DATABASE_URL%/*}/$db" -c "SELECT name, lo, hi, created_at::time, sealed_at::time FROM outbox_partition ORDER BY lo" >&2
  log "outbox-relay audit (exit $audit):"
  cut -c1-400 "$work/audit.txt" >&2
  grep -E 'maintenance report|WARN|ERROR' "$files/relay.log" | cut -c1-220 >&2 || true
done
log "$lost_runs of $RUNS runs failed (events lost, or an audit that disagrees with the consumer)"
[ "$lost_runs" = 0 ]
