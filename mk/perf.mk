# Load tests and the relay tuning sweep: the crate load-tests/ (binary `outbox-load`).
# Include from the top-level Makefile, after mk/services.mk (it provides `services` and
# $(SERVICES_ENV)):
#
#   include mk/perf.mk
#
#   make load                                   # drain 1,000,000 events, then 30 s at 5,000/s
#   make load LOAD_ARGS="--mode drain --events 200000"
#   make load LOAD_ARGS="--mode steady --duration 15 --json"
#   make tune                                   # full sweep -> docs/benchmarks.md, docs/plots/
#   make tune TUNE_ARGS=--quick                 # ~2 minute sweep, to test it end to end
#   make debezium                               # CPU per event: Debezium's outbox relay vs ours
#   make debezium DEBEZIUM_SECS=60              #   (scripts/bench/debezium.sh; ~4 min at 30 s)
#   make hunt-loss HUNT_RUNS=40                 # repeat short steady loads until one loses
#                                               #   events (scripts/bench/hunt-loss.sh, ~25 s a run)
#
# Both build the release relay (`outbox-relay`, which the driver runs as a child process
# to measure its CPU and memory) before the driver. `outbox-load load --help` lists
# every flag. Exit codes: 0 verified, 1 events lost/reordered or an error, 2 bad flags,
# 3 a service is unreachable.

CARGO ?= cargo
LOAD_ARGS ?=
TUNE_ARGS ?=
PERF_BUILD = $(CARGO) build --release -q -p outbox-engine --features cli --bin outbox-relay

.PHONY: load tune debezium hunt-loss
DEBEZIUM_SECS ?= 30
HUNT_RUNS ?= 20

load: toolchain services
	@$(SERVICES_ENV); $(PERF_BUILD) && \
	  $(CARGO) run --release -q -p outbox-load -- load $(LOAD_ARGS)

tune: toolchain services
	@$(SERVICES_ENV); $(PERF_BUILD) && \
	  $(CARGO) run --release -q -p outbox-load -- tune $(TUNE_ARGS)

debezium: toolchain services
	scripts/bench/debezium.sh $(DEBEZIUM_SECS)

hunt-loss: toolchain services
	scripts/bench/hunt-loss.sh $(HUNT_RUNS)
