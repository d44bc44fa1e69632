# One entry point for every task. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: use it when the machine has it (on PATH or through pyenv), else python3.
PY313_FOUND := $(shell for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | sort -rV); do \
	  PYENV_VERSION=$$v pyenv which python3.13 2>/dev/null && exit 0; done; \
	  p=$$(command -v python3.13) && $$p -c 'import sys' >/dev/null 2>&1 && echo $$p)
PYTHON_BOOT := $(if $(PY313_FOUND),$(PY313_FOUND),python3)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
# The function and layer Makefiles (sam build) compile .pyc with it: never empty.
export PY313 := $(PYTHON_BOOT)

.PHONY: help venv run cli stack-bench test test-unit test-py311 bench lint validate build clean openapi

help:
	@echo "make run        serve every webhook locally (embedded DynamoDB/SQS, fake WeChat API)"
	@echo "make cli ARGS=  the wxloop CLI against the running make run stack (e.g. ARGS='rules pull')"
	@echo "make test       all tests (unit, integration, e2e)"
	@echo "make bench      benchmarks -> benchmarks/results.json"
	@echo "make stack-bench  2,000 messages from 1,000 new people against the running make run stack"
	@echo "make validate   sam validate --lint;  make build: sam build (no Docker)"
	@echo "make lint       ruff, mypy, import contracts"
	@echo "make reliability  storms, faults, races, security, fuzz, load, cost (SHORT=1: the CI version)"

$(VENV)/.stamp: pyproject.toml
	@test -n "$(PY313_FOUND)" || echo "warning: python3.13 not found, using $$(python3 --version)"
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

run: venv
	@$(PY) -m devstack.stack

# Needs `make run` in another terminal: msg/s of the first and last hundred, first-contact latency, memory.
stack-bench: venv
	@test -f .local/env || { echo "no .local/env: start the stack first (make run)" >&2; exit 1; }
	$(PY) -m devstack.volume --messages $(or $(MESSAGES),2000)

# The stack writes what the CLI needs (endpoint, table, queue, accounts, fake WeChat API) to .local/env.
cli: venv
	@test -f .local/env || { echo "no .local/env: start the stack first (make run)" >&2; exit 1; }
	@set -a && . ./.local/env && set +a && $(VENV)/bin/wxloop $(ARGS)

test: venv
	$(PY) -m pytest tests --ignore=tests/reliability  # the reliability short run: make reliability SHORT=1

test-unit: venv
	$(PY) -m pytest tests/unit

# The code also runs on 3.11: the unit and integration suites on the machine's python3.
test-py311:
	python3 -m venv .venv311
	.venv311/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	.venv311/bin/python -m pytest tests/unit tests/integration

bench: venv build
	$(PY) benchmarks/run.py --build-dir .aws-sam/build --out benchmarks/results.json

lint: venv
	$(PY) -m ruff check layers functions tests benchmarks devstack events reliability
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

$(SAM_VENV)/.stamp:
	$(PYTHON_BOOT) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli
	touch $@

validate: $(SAM_VENV)/.stamp
	$(SAM) validate --lint --region us-east-1

build: $(SAM_VENV)/.stamp
	$(SAM) build --parallel

clean:
	rm -rf $(VENV) .venv311 $(SAM_VENV) .aws-sam

# The MP client API's OpenAPI document, generated from its pydantic models (a test fails when it drifts).
openapi: venv
	PYTHONPATH=layers $(PY) -m wxloop.services.mp_api.http > openapi.json
# Headless Chromium from the OS packages, for the KPI report's browser test (idempotent; root or sudo).
.PHONY: browser kpi-demo
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# Demo journeys into the local lake, then the HTML KPI report of their last 28 days.
kpi-demo: venv
	$(PY) -m wxloop.cli demo traffic --persons 5000 --days 60 --lake .local/lake
	$(PY) -m wxloop.cli kpi --format html -o .local/kpi.html --lake .local/lake

# Storms, faults, races, security, fuzz, load, cold start and cost against an in-process local stack:
# writes benchmarks/reliability.json and the table in docs/reliability.md. SHORT=1: the CI version (.ci/run).
.PHONY: reliability
reliability: venv
	$(PY) -m reliability $(if $(SHORT),--short,--readme)

# The environment variable table of docs/configuration.md, generated from wxloop.settings (a test fails when it drifts).
.PHONY: configuration-doc
configuration-doc: venv
	@PYTHONPATH=layers $(PY) -c "import pathlib, re; from wxloop.settings import configuration_table as t; \
	p = pathlib.Path('docs/configuration.md'); s = p.read_text(); \
	p.write_text(re.sub(r'(?s)(<!-- generated -->\n).*(<!-- end generated -->)', lambda m: m[1] + t() + m[2], s))"
