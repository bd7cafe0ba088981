# edgerank: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# pyo3's build script keys its cache on the interpreter: give every cargo
# call the venv's, as maturin does, so that they share one build.
export PYO3_PYTHON := $(abspath $(BIN)/python)
export VIRTUAL_ENV := $(abspath $(VENV))

# `make install` reinstalls when pyproject.toml changes and rebuilds the
# extension when any Rust source changes.
DEPS_STAMP := $(VENV)/.edgerank-deps.stamp
BUILD_STAMP := $(VENV)/.edgerank-build.stamp
RUST_SOURCES := $(shell find hotpath -path hotpath/target -prune -o \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -print)

MYPY_PATHS ?= hotpath node trainer replicator tests
# The whole tree is kept ruff-formatted.
FORMATTED ?= .

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

.PHONY: venv
venv: $(BIN)/python ## Create .venv with python3 -m venv, if missing

$(DEPS_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --progress-bar off -e '.[dev]'
	touch $(DEPS_STAMP) $(BUILD_STAMP)

$(BUILD_STAMP): $(DEPS_STAMP) $(RUST_SOURCES)
	$(BIN)/maturin develop --release --skip-install
	cd hotpath && cargo build --release --locked -p edgerank-loadgen
	touch $(BUILD_STAMP)

.PHONY: install
install: $(BUILD_STAMP) ## Install the package with dev extras into .venv (builds the Rust extension)

.PHONY: build
build: $(DEPS_STAMP) ## Rebuild the Rust extension in place and the load generator (release)
	$(BIN)/maturin develop --release --skip-install
	cd hotpath && cargo build --release --locked -p edgerank-loadgen
	touch $(BUILD_STAMP)

.PHONY: proto
proto: install ## Regenerate the gRPC code from proto/
	$(BIN)/python proto/generate.py

.PHONY: proto-check
proto-check: install ## Fail if the generated gRPC code is out of date
	$(BIN)/python proto/generate.py --check

.PHONY: lint
lint: install ## ruff, mypy, cargo fmt --check, clippy -D warnings
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(FORMATTED)
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/python -m mypy.stubtest hotpath._native
	cd hotpath && cargo fmt --all --check
	cd hotpath && cargo clippy --locked --all-targets -- -D warnings

.PHONY: servers
servers: install ## Show which redis-server and nats-server the tests will start
	@$(BIN)/python -c 'from tests.servers import find_redis_server as r, find_nats_server as n; print("redis-server:", r()); print("nats-server: ", n())'

.PHONY: test
test: install servers lint ## Lint, then cargo test (core and load generator crates) and pytest (starts its own Redis and NATS)
	cd hotpath && cargo test --locked -p edgerank-core -p edgerank-loadgen
	$(BIN)/python -m pytest

.PHONY: demo
demo: install ## Run the end-to-end demo
	$(BIN)/edgerank demo

.PHONY: bench
bench: install ## Benchmark the hot path
	$(BIN)/edgerank bench hotpath

.PHONY: clean
clean: ## Remove build outputs and caches (keeps .venv)
	rm -rf hotpath/target dist build .pytest_cache .mypy_cache .ruff_cache
	rm -f hotpath/_native*.so $(BUILD_STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove .venv
	rm -rf $(VENV)
