# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both install what is missing (Debian packages, the Pulsar distribution from Maven
# Central) and start PostgreSQL and Pulsar on 127.0.0.1, unless DATABASE_URL / PULSAR_URL
# point at services of your own.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

include mk/services.mk
-include mk/perf.mk

.PHONY: all toolchain build test unit-test faults soak demo example migrate status relay lint fmt bench clean

all: build

toolchain:
	@scripts/toolchain.sh

build: toolchain
	$(CARGO) build --workspace --all-targets

## The whole suite: unit tests, then integration tests against the real services.
test: toolchain services
	@mkdir -p target; $(SERVICES_ENV); set -o pipefail; \
	  $(CARGO) test --workspace --no-fail-fast -- --nocapture 2>&1 | tee target/test.log; \
	  status=$$?; scripts/test-summary.sh target/test.log; exit $$status

## The fault suite, long: 3 relays on one database under load, with SIGKILL, SIGSTOP,
## broker and database restarts, terminated sessions, a long open transaction, scaling
## 1 -> 3 -> 1 and a paused broker, many rounds each. `make test` runs it short.
faults: toolchain services
	@mkdir -p target; $(SERVICES_ENV); set -o pipefail; \
	  OUTBOX_FAULTS=long $(CARGO) test -p outbox-engine --features cli --test faults -- --nocapture 2>&1 | tee target/faults.log; \
	  status=$$?; echo; echo "Figures (docs/reliability.md):"; grep -h 'fault-report' target/faults.log; exit $$status

## Retention soak: a constant load for 30 minutes (OUTBOX_SOAK_SECS) with a 5-minute
## retention; prints table and index sizes over time (docs/benchmarks.md, "Storage").
## `make test` runs it for 24 s.
soak: toolchain services
	@mkdir -p target; $(SERVICES_ENV); set -o pipefail; \
	  OUTBOX_SOAK_SECS=$${OUTBOX_SOAK_SECS:-1800} OUTBOX_SOAK_RATE=$${OUTBOX_SOAK_RATE:-2000} \
	  OUTBOX_SOAK_RETENTION_MS=$${OUTBOX_SOAK_RETENTION_MS:-300000} \
	  $(CARGO) test --release -p outbox-engine --test retention -- --nocapture 2>&1 | tee target/soak.log; \
	  status=$$?; echo; grep -h 'soak-report' target/soak.log; exit $$status

## Unit tests only (no services needed).
unit-test: toolchain
	$(CARGO) test --workspace --lib --bins

## Starts the services, migrates, runs the relay embedded in a small writer service and
## shows events flowing from PostgreSQL to Pulsar with a live count.
demo: toolchain services
	@$(SERVICES_ENV); $(CARGO) run --release -q -p outbox-examples --bin demo

## The two example services (examples/): `orders` (HTTP, relay embedded) and `shipping`
## (idempotent inbox); posts orders and shows them turning into shipments.
example: toolchain services
	@$(SERVICES_ENV); scripts/example.sh

migrate: toolchain services
	@$(SERVICES_ENV); $(CARGO) run --release -q -p outbox-engine --features cli --bin outbox-relay -- migrate

status: toolchain services
	@$(SERVICES_ENV); $(CARGO) run --release -q -p outbox-engine --features cli --bin outbox-relay -- status

## The standalone relay in the foreground (Ctrl-C stops it gracefully).
relay: toolchain services
	@$(SERVICES_ENV); $(CARGO) run --release -q -p outbox-engine --features cli --bin outbox-relay -- migrate && \
	  $(CARGO) run --release -q -p outbox-engine --features cli --bin outbox-relay -- run

## Criterion benchmarks of the hot paths, each beside a raw baseline.
bench: toolchain
	$(CARGO) bench -p outbox-benches --bench hot_paths

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p outbox-engine -p outbox-adapters

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
