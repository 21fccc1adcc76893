# QuantoxBay: `make run` serves the app, `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
TOOLS_BIN := $(CURDIR)/$(TOOLS)/node_modules/.bin
APP_PORT ?= 3000
# The address the server binds: loopback unless HOST says otherwise (e.g. HOST=0.0.0.0, on purpose).
# An empty HOST would let Reflex fall back to 0.0.0.0, so it counts as unset.
override HOST := $(or $(strip $(HOST)),127.0.0.1)
export HOST
export PATH := $(TOOLS_BIN):$(CURDIR)/$(BIN):$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_TELEMETRY_ENABLED := false
export PYTHONUNBUFFERED := 1

.PHONY: setup run run-prod dev test test-fast lint bench migrate seed clean chromium services

# Reinstalls only when requirements.txt changes (a second `make run` takes seconds).
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# Reflex needs bun >= 1.4.4 and node >= 22; its own bun download cannot reach the internet,
# but the npm packages carry the binaries.
$(TOOLS)/.installed:
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) bun@1.4.5 node@22
	$(TOOLS_BIN)/bun --version >/dev/null && $(TOOLS_BIN)/node --version >/dev/null
	touch $@

setup: $(VENV)/.installed $(TOOLS)/.installed

migrate: setup
	$(BIN)/python -m quantoxbay migrate

# Demo accounts open with the published password on a loopback HOST only: on any other, seed-demo
# gives them random passwords and secure-demo replaces the published one, before the server listens.
seed: migrate
	@if [ -z "$$STRIPE_SECRET_KEY" ] && [ -z "$$DATABASE_URL" ]; then $(BIN)/python -m quantoxbay seed-demo; \
	else $(BIN)/python -m quantoxbay secure-demo; fi

run: seed
	@echo "QuantoxBay on http://localhost:$(APP_PORT) (listening on $(HOST))"
	$(BIN)/reflex run --env prod --single-port --backend-host $(HOST) --backend-port $(APP_PORT) --frontend-port $(APP_PORT)

# Production: PostgreSQL, Redis for Reflex state, S3 (or compatible) for files, several workers.
# DATABASE_URL and REDIS_URL are required; STORAGE_URL, S3_ENDPOINT_URL, AWS_*, STRIPE_* as you use them.
run-prod: migrate
	@test -n "$$DATABASE_URL" || (echo "run-prod needs DATABASE_URL (postgresql+psycopg://...)"; exit 2)
	@test -n "$$REDIS_URL" || (echo "run-prod needs REDIS_URL (redis://...)"; exit 2)
	$(BIN)/python -m quantoxbay secure-demo
	GRANIAN_WORKERS=$${WORKERS:-2} $(BIN)/reflex run --env prod --single-port --backend-host $(HOST) --backend-port $(APP_PORT) --frontend-port $(APP_PORT)

dev: seed
	$(BIN)/reflex run --env dev --backend-host $(HOST)

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

services:
	bash scripts/ensure_services.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check quantoxbay tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy quantoxbay bench

test: setup chromium services lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: unit and integration tests on SQLite only. Leaves out the `postgres` and `slow`
# markers (PostgreSQL; servers or the real app started in subprocesses), browser tests, apt and lint.
test-fast: setup
	$(BIN)/python -m pytest tests/unit tests/integration -m "not postgres and not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf .web .states data test-artifacts
