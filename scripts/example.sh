#!/usr/bin/env bash
# `make example`: the two example services against the local PostgreSQL and Pulsar.
# Starts `orders` (HTTP, relay embedded) and `shipping` (inbox consumer), posts a few
# orders, and shows them turning into shipments; stops both on exit.
# Needs DATABASE_URL and PULSAR_URL (make exports them).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE_URL:?DATABASE_URL is not set (run through make example)}"
: "${PULSAR_URL:?PULSAR_URL is not set (run through make example)}"
ORDERS_LISTEN=${ORDERS_LISTEN:-127.0.0.1:8081}
COUNT=${EXAMPLE_ORDERS:-10}
export ORDERS_LISTEN ORDERS_TOPIC=${ORDERS_TOPIC:-example-orders}
export SHIPPING_SUBSCRIPTION=${SHIPPING_SUBSCRIPTION:-example-shipping}

cargo build --release -q -p outbox-examples --bin orders --bin shipping
bin=target/release
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

RUST_LOG=${RUST_LOG:-info,pulsar=warn} "$bin/orders" > >(sed 's/^/[orders]   /') 2>&1 &
pids+=($!)
RUST_LOG=${RUST_LOG:-info,pulsar=warn} "$bin/shipping" > >(sed 's/^/[shipping] /') 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://$ORDERS_LISTEN/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "http://$ORDERS_LISTEN/healthz" >/dev/null || { echo "orders did not start on $ORDERS_LISTEN" >&2; exit 1; }

echo "== a malformed order is refused, naming the field:"
curl -s -H 'Content-Type: application/json' -d '{"amount_cents": 5}' "http://$ORDERS_LISTEN/orders"; echo
echo "== posting $COUNT orders to http://$ORDERS_LISTEN/orders"
for i in $(seq 1 "$COUNT"); do
  curl -sf -H 'Content-Type: application/json' \
    -d "{\"customer\": \"customer-$i\", \"amount_cents\": $((i * 100))}" "http://$ORDERS_LISTEN/orders" >/dev/null
done
count() { psql "$DATABASE_URL" -XAtqc "$1"; }
for _ in $(seq 1 60); do
  shipped=$(count "SELECT count(DISTINCT s.order_id) FROM shipments s JOIN orders o ON o.id = s.order_id" 2>/dev/null || echo 0)
  orders=$(count "SELECT count(*) FROM orders")
  [ "$shipped" -ge "$orders" ] && break
  sleep 0.5
done
echo "== orders: $orders, orders shipped: $shipped, shipments: $(count 'SELECT count(*) FROM shipments')"
count "SELECT o.customer || ' -> shipment ' || s.id FROM orders o JOIN shipments s ON s.order_id = o.id ORDER BY s.id DESC LIMIT 5"
