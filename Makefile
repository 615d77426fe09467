# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := libs/contracts libs/runtime libs/devtools services/gateway-simulator \
            services/order services/inventory services/payment services/shipping
SERVICES := order inventory payment shipping
STAMP := $(VENV)/.installed

.PHONY: help install infra migrate run test lint typecheck unit e2e e2e-replicas bench capacity floor catalog clean

help:
	@echo "make run    - install, migrate, start every service + gateway simulator"
	@echo "make test   - install, lint, type-check and run the whole suite"
	@echo "make bench  - benchmark the saga end to end (BENCH_ARGS=...)"
	@echo "make capacity - capacity report of the running services"
	@echo "make floor  - CPU of one message and one transaction here, and the orders/s ceiling (FLOOR_ARGS=...)"

# Reinstall when any package definition or the pins change.
$(STAMP): requirements-dev.txt constraints.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements-dev.txt \
		$(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)

install: $(STAMP)

infra:
	@.ci/ensure-services

migrate: install infra
	@for s in $(SERVICES); do \
		OMS_LOG_FORMAT=$${OMS_LOG_FORMAT:-text} $(BIN)/python -m oms_$$s migrate || exit 1; done

run: migrate
	@OMS_LOG_FORMAT=$${OMS_LOG_FORMAT:-text} $(BIN)/honcho start -f Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m oms_contracts.catalog check libs/contracts/catalog

typecheck: install
	$(BIN)/mypy libs/contracts/src libs/runtime/src libs/devtools/src \
		services/order/src services/inventory/src services/payment/src \
		services/shipping/src services/gateway-simulator/src

# The whole suite, then the end-to-end part again with two replicas of every
# service competing for their queues (less what does not depend on replicas).
REPLICA_PASS := -m "e2e and not single_pass"

test: install infra lint typecheck
	$(BIN)/pytest
	OMS_E2E_REPLICAS=2 $(BIN)/pytest $(REPLICA_PASS)

unit: install
	$(BIN)/pytest -m "not e2e and not integration"

e2e: install infra
	$(BIN)/pytest -m e2e

e2e-replicas: install infra
	OMS_E2E_REPLICAS=2 $(BIN)/pytest $(REPLICA_PASS)

BENCH_ARGS ?=
# The benchmark makes, migrates and drops its own database and vhost.
bench: install infra
	$(BIN)/python -m oms_devtools.bench $(BENCH_ARGS)

capacity: install
	$(BIN)/python -m oms_devtools.capacity $(CAPACITY_ARGS)

FLOOR_ARGS ?=
# Like the benchmark, it makes and drops its own database and vhost.
floor: install infra
	$(BIN)/python -m oms_devtools.floor $(FLOOR_ARGS)

# Regenerate the published event catalog after changing a message in libs/contracts.
catalog: install
	$(BIN)/python -m oms_contracts.catalog write libs/contracts/catalog

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
