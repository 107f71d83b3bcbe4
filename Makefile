# vmvc: two commands. `make bench` runs the quick benchmark; `make test` runs the test suite.
# Both first run `make setup`, which is idempotent: it installs only what is missing and
# starts dockerd / virtlogd / libvirtd only if they are not already answering.
SHELL := /bin/bash
VENV ?= .venv
VMVC := $(VENV)/bin/vmvc
PROFILE ?= quick
RESULTS ?= results

.PHONY: setup bench test test-unit lint clean

setup:
	@bash scripts/setup.sh

bench: setup
	$(VMVC) bench --backend all --profile $(PROFILE) --output $(RESULTS)

test: setup
	$(VENV)/bin/pytest -q -ra

test-unit: setup
	$(VENV)/bin/pytest -q -ra tests/unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean: setup
	$(VMVC) clean
