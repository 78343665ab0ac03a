# hepml-hub: `make hub` runs the embedded hub, `make test` runs the tests.
# Both install what they need first: uv (from PyPI), the locked virtual environment,
# configurable-http-proxy (npm) and, for the tests, Debian's chromium, slurm-wlm and munge.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
# Debian's interpreter, so that per-user system accounts can run the environment's python
# (pyenv's lives under /root, which they cannot read). Override with PYTHON_BASE=...
PYTHON_BASE ?= $(shell test -x /usr/bin/python3.11 && echo /usr/bin/python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
UV := $(CURDIR)/.tools/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help setup hub test bench lint system-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --python $(PYTHON_BASE)
	touch $@

node_modules/.bin/configurable-http-proxy: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.synced node_modules/.bin/configurable-http-proxy  ## install the environment and the proxy

system-deps:  ## Debian packages for the tests (chromium, slurm-wlm, munge) when root
	bash scripts/install-system-deps.sh

hub: setup  ## run the embedded hub on http://127.0.0.1:8000
	$(VENV)/bin/jupyterhub -f jupyterhub_config.py

test: setup system-deps  ## install everything and run the test suite
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: setup  ## run the benchmarks; numbers go to benchmarks/results/
	$(VENV)/bin/python -m benchmarks.spawn_latency
	$(VENV)/bin/python -m benchmarks.generator
	$(VENV)/bin/python -m benchmarks.columnar
	$(VENV)/bin/python -m benchmarks.paper_pnn
	$(VENV)/bin/python -m benchmarks.paper_pivot
	$(VENV)/bin/python -m benchmarks.paper_inferno
	$(VENV)/bin/python -m benchmarks.scan
	$(VENV)/bin/python -m benchmarks.slurm_scale

lint: setup  ## ruff, and hadolint on the Dockerfiles
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check extensions analysis_lib tests benchmarks images
	$(VENV)/bin/hadolint --config .hadolint.yaml images/*/Dockerfile

clean:  ## remove the environment, the proxy and hub state
	rm -rf .venv .tools node_modules data
