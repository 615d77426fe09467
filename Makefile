# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
# The interpreter of the venv: the distribution's CPython where it is 3.11 or newer,
# else python3 from the PATH; PYTHON=... chooses another. Debian builds its CPython
# with profile-guided and link-time optimisation, as the python:3.11-slim images of
# the Dockerfiles are built; a CPython built without them (pyenv's default) spends
# ~6 % more CPU in the services (README, Benchmarks, issue 19's ninth pass).
SYSTEM_PYTHON := /usr/bin/python3
ifndef PYTHON
PYTHON := $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $(SYSTEM_PYTHON) || echo python3)
endif
VENV := .venv
BIN := $(VENV)/bin
# Names the interpreter the venv was made with; rewritten (and the venv made anew)
# only when PYTHON names another one.
INTERPRETER := $(VENV)/.interpreter
PACKAGES := libs/contracts libs/runtime libs/devtools services/gateway-simulator services/console \
            services/order services/inventory services/payment services/shipping
SERVICES := order inventory payment shipping
STAMP := $(VENV)/.installed

.PHONY: FORCE help install infra browser screenshots migrate run reset test lint typecheck unit e2e e2e-replicas bench capacity floor catalog clean

help:
	@echo "make run    - install, migrate, start every service + gateway simulator"
	@echo "make reset  - drop the database (OMS_DATABASE_URL) and migrate it afresh; stop make run first"
	@echo "make test   - install, lint, type-check and run the whole suite"
	@echo "make bench  - benchmark the saga end to end (BENCH_ARGS=...)"
	@echo "make capacity - capacity report of the running services"
	@echo "make floor  - CPU of one message and one transaction here, and the orders/s ceiling (FLOOR_ARGS=...)"

$(INTERPRETER): FORCE
	@wanted="$$($(PYTHON) -c 'import sys; print(sys.executable)')" || exit 1; \
	if [ "$$(cat $@ 2>/dev/null)" != "$$wanted" ]; then \
		if [ -e $(VENV) ]; then echo "making $(VENV) anew with $$wanted"; rm -rf $(VENV); fi; \
		mkdir -p $(VENV) && echo "$$wanted" > $@; fi

# Reinstall when the interpreter, any package definition or the pins change.
$(STAMP): $(INTERPRETER) requirements-dev.txt constraints.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements-dev.txt \
		$(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)

install: $(STAMP)

infra:
	@.ci/ensure-services

migrate: install infra
	@for s in $(SERVICES) console; do \
		OMS_LOG_FORMAT=$${OMS_LOG_FORMAT:-text} $(BIN)/python -m oms_$$s migrate || exit 1; done

# Ctrl-C stops honcho and every process it started; that is the normal way out, so
# it ends make quietly instead of with "Error 130/143".
run: migrate
	@trap 'exit 0' INT TERM; \
	OMS_LOG_FORMAT=$${OMS_LOG_FORMAT:-text} $(BIN)/honcho start -f Procfile; \
	status=$$?; case $$status in 0|130|143) exit 0;; *) exit $$status;; esac

# Start again from an empty database: every order, product and payment is gone.
reset: install infra
	@$(BIN)/python -c 'import asyncio; from oms_devtools.infra import drop_database; \
	from oms_runtime.settings import ServiceSettings; url = ServiceSettings().database_url; \
	print("dropping", url.rsplit("@", 1)[-1]); asyncio.run(drop_database(url))'
	@$(MAKE) --no-print-directory migrate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m oms_contracts.catalog check libs/contracts/catalog

typecheck: install
	$(BIN)/mypy libs/contracts/src libs/runtime/src libs/devtools/src \
		services/order/src services/inventory/src services/payment/src \
		services/shipping/src services/gateway-simulator/src services/console/src

# The console's browser tests drive Debian's Chromium (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
		echo "installing Debian's chromium for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The whole suite, then the end-to-end part again with two replicas of every
# service competing for their queues (less what does not depend on replicas).
REPLICA_PASS := -m "e2e and not single_pass"
# Test processes side by side (pytest-xdist), each with a database, a vhost and a
# stack of its own; a file's tests stay in one process, and files are handed out in
# collection order (the long e2e ones first, tests/conftest.py). The e2e tests mostly
# wait on the saga, so two processes keep two cores busy. Peak Postgres connections
# with two were 69 in the replica pass (the default max_connections is 100).
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: install infra browser lint typecheck
	$(BIN)/pytest $(PARALLEL)
	OMS_E2E_REPLICAS=2 $(BIN)/pytest $(PARALLEL) $(REPLICA_PASS)

unit: install
	$(BIN)/pytest -m "not e2e and not integration"

e2e: install infra browser
	$(BIN)/pytest $(PARALLEL) -m e2e

e2e-replicas: install infra
	OMS_E2E_REPLICAS=2 $(BIN)/pytest $(PARALLEL) $(REPLICA_PASS)

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

# Screenshots of the console's main pages for the README (docs/console/*.png).
screenshots: install infra browser
	OMS_CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest tests/e2e/console -k screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
