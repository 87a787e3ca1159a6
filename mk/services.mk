# Local PostgreSQL + Pulsar for tests and benchmarks (see scripts/services/).
# Include from the top-level Makefile:
#
#   include mk/services.mk
#   test: services
#   	$(SERVICES_ENV) && cargo test --workspace
#
# $(SERVICES_ENV) exports DATABASE_URL, PULSAR_URL, PULSAR_ADMIN_URL (values
# already set by the user win) into the rest of that recipe line.

SERVICES_SH := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts/services/services.sh)
SERVICES_ENV = eval "$$($(SERVICES_SH) env)"

.PHONY: services services-down services-status services-env

## services: start PostgreSQL and Pulsar on 127.0.0.1 (idempotent)
services:
	$(SERVICES_SH) up

## services-down: stop them (data kept)
services-down:
	$(SERVICES_SH) down

## services-status: report whether both answer
services-status:
	$(SERVICES_SH) status

## services-env: print the export lines (eval "$(make -s services-env)")
services-env:
	@$(SERVICES_SH) env
