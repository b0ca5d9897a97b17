# omniroute: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help venv develop develop-release run test lint fmt bench rust-test py-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.ready: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'maturin>=1.9,<2'
	touch $@

venv: $(VENV)/.ready ## create the virtualenv with maturin

# The first-party channel plugins, and the example third-party plugin the tests discover
# (installed as built, not editable: `make develop` again after changing one).
PLUGINS := plugins/omniroute-webhook plugins/omniroute-messaging plugins/omniroute-email plugins/omniroute-webchat plugins/omniroute-sip examples/omniroute-example

develop: venv ## build the Rust extension (debug) and install omniroute with the dev tools and the plugins
	maturin develop --quiet --extras dev
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(PLUGINS)

develop-release: venv ## build the Rust extension optimised (for benchmarks and the demo)
	maturin develop --quiet --release --extras dev
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(PLUGINS)

run: develop-release ## set up and run the demo centre (omniroute serve --demo on SQLite) at http://127.0.0.1:8400
	omniroute serve --demo --store sqlite:///demo.db

lint: develop ## rustfmt, clippy, ruff, mypy strict, stubtest
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings
	ruff check python tests benches plugins examples
	ruff format --check python tests benches plugins examples
	mypy
	python -m mypy.stubtest omniroute._rust --allowlist stubtest-allowlist.txt

rust-test: ## the Rust test suite
	cargo test --locked --workspace --exclude omniroute-py

py-test: develop ## pytest over tests/ and benches/ (benchmarks run once, as tests; installs PostgreSQL, Chromium and sipp if missing)
	bash scripts/postgres.sh install
	bash scripts/chromium.sh install
	bash scripts/sipp.sh install
	pytest -q -p no:cacheprovider --benchmark-disable

test: lint rust-test py-test ## everything CI runs

fmt: venv ## format Rust and Python
	cargo fmt --all
	ruff format python tests benches plugins examples
	ruff check --fix python tests benches plugins examples

bench: develop-release ## benchmarks: pytest-benchmark (through Python) and Criterion (core)
	pytest -q -s -p no:cacheprovider benches --benchmark-only --benchmark-columns=min,median,mean,ops,rounds
	cargo bench --locked -p omniroute-core --bench routing --bench metrics
