# Single entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION      := 0.13.9
SAM_VERSION     := 1.170.0
CHECKOV_VERSION := 3.3.30

TOOLS    := $(CURDIR)/.tools
UV       := $(TOOLS)/bootstrap/bin/uv
SAM      := $(TOOLS)/bin/sam
CHECKOV  := $(TOOLS)/bin/checkov
VENV_BIN := $(CURDIR)/.venv/bin
# sam build (no containers) runs `python3.13 -m pip`: a seeded 3.13 venv on PATH provides both.
BUILD_PY := $(TOOLS)/build-python/bin/python

export UV_PYTHON_DOWNLOADS := never
export UV_TOOL_DIR         := $(TOOLS)/uv-tools
export UV_TOOL_BIN_DIR     := $(TOOLS)/bin
# SAM CLI must not phone home or ask questions.
export SAM_CLI_TELEMETRY   := 0

.PHONY: help setup run test check lint format typecheck bandit infra-lint infra-lint-variants checkov sam-validate build \
        layer-requirements check-layer-requirements audit bench bytecode openapi fuzz load ci clean

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-26s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)/bootstrap
	$(TOOLS)/bootstrap/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked
	@touch $@

$(SAM): $(UV)
	$(UV) tool install --quiet --python 3.13 aws-sam-cli==$(SAM_VERSION)

$(CHECKOV): $(UV)
	$(UV) tool install --quiet --python 3.13 checkov==$(CHECKOV_VERSION)

setup: .venv/.synced $(SAM) $(CHECKOV) $(BUILD_PY) ## Create .venv (locked) and the isolated SAM CLI and checkov tools

run: .venv/.synced ## Set up and start the local API (chatbot-local)
	$(VENV_BIN)/chatbot-local

test: setup ## Run the whole test suite with coverage (unit, integration, infrastructure, local API)
	$(VENV_BIN)/pytest

lint: .venv/.synced ## ruff (lint and format check)
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

format: .venv/.synced ## Apply ruff formatting and safe fixes
	$(VENV_BIN)/ruff check --fix .
	$(VENV_BIN)/ruff format .

typecheck: .venv/.synced ## mypy (strict) over the layer, the functions and the local package
	$(VENV_BIN)/mypy

bandit: .venv/.synced ## bandit over shipped and local code
	$(VENV_BIN)/bandit -q -c pyproject.toml -r layers functions local

infra-lint: .venv/.synced sam-validate checkov ## cfn-lint, sam validate --lint and checkov on template.yaml
	$(VENV_BIN)/cfn-lint template.yaml

sam-validate: $(SAM)
	$(SAM) validate --lint --template template.yaml --region eu-west-1

checkov: $(CHECKOV)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml

VARIANTS_DIR := $(CURDIR)/.aws-sam/template-variants

infra-lint-variants: .venv/.synced $(SAM) $(CHECKOV) ## cfn-lint, sam validate and checkov on every network/audit variant
	rm -rf $(VARIANTS_DIR)
	$(VENV_BIN)/python tests/infrastructure/template_variants.py $(VARIANTS_DIR)
	set -e; for variant in $(VARIANTS_DIR)/*.yaml; do \
	  echo "== $$variant"; \
	  $(VENV_BIN)/cfn-lint $$variant; \
	  $(SAM) validate --lint --template $$variant --region eu-west-1; \
	  $(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f $$variant; \
	done

$(BUILD_PY): | $(UV)
	$(UV) venv --seed --quiet --clear --python 3.13 $(TOOLS)/build-python
	ln -sf python $(TOOLS)/build-python/bin/python3.13

build: $(SAM) $(BUILD_PY) ## sam build (no containers) into .aws-sam/build, then precompile its bytecode
	PATH="$(TOOLS)/build-python/bin:$$PATH" $(SAM) build --template template.yaml --parallel
	@$(MAKE) --no-print-directory bytecode BUILD_DIR=.aws-sam/build

# Lambda cannot write bytecode under /var/task or /opt, so without .pyc files in the package every cold
# start compiles each imported module from source (docs/performance.md measures the difference).
# checked-hash: the interpreter hashes the source on import, so an edited .py is never shadowed by a
# stale .pyc; -s/-p record the paths Lambda sees (/var/task, /opt/python) in tracebacks, not this machine's.
BUILD_DIR    ?= .aws-sam/build
INVALIDATION ?= checked-hash
bytecode: $(BUILD_PY) ## Precompile the .pyc files of a sam build output (BUILD_DIR, default .aws-sam/build)
	@set -e; for dir in $(BUILD_DIR)/*/; do \
		dir=$${dir%/}; case "$$dir" in *Layer) runtime=/opt ;; *) runtime=/var/task ;; esac; \
		$(BUILD_PY) -m compileall -q -j 0 --invalidation-mode $(INVALIDATION) -s "$$dir" -p "$$runtime" "$$dir"; \
	done

layer-requirements: $(UV) ## Regenerate layers/security/requirements.txt (hashed) from uv.lock
	$(UV) export --locked --only-group layer --no-emit-project --format requirements-txt --no-header \
		--output-file layers/security/requirements.txt --quiet

check-layer-requirements: $(UV) ## Fail when the layer requirements drift from uv.lock
	$(UV) export --locked --only-group layer --no-emit-project --format requirements-txt --no-header --quiet \
		| diff -u layers/security/requirements.txt - || (echo "layer requirements drift: run make layer-requirements" && exit 1)

audit: .venv/.synced ## pip-audit --strict (needs a vulnerability service)
	$(UV) run --with pip-audit==2.10.1 pip-audit --strict --skip-editable

openapi: .venv/.synced ## Regenerate docs/openapi.json from the chat routes (a test fails when it drifts)
	PYTHONPATH=layers/security:functions/chat $(VENV_BIN)/python -m chat.openapi docs/openapi.json

bench: .venv/.synced $(SAM) $(BUILD_PY) ## Run every benchmarks/bench_*.py, then one table of every DESIGN.md section 7 budget
	$(VENV_BIN)/python benchmarks/run_all.py

fuzz: .venv/.synced ## Schemathesis on docs/openapi.json against chatbot-local: >= 1,000 cases, prints cases and failures
	$(VENV_BIN)/python tests/local/api_fuzzer.py --cases-per-operation 110 --minimum 1000

load: .venv/.synced ## Bounded loopback load test of chatbot-local: 20 clients, 2,000 turns, throughput and latency percentiles
	$(VENV_BIN)/python tests/local/load_api.py --clients 20 --turns 2000 --max-seconds 600

check: lint typecheck bandit check-layer-requirements infra-lint build ## Every static gate: ruff, mypy, bandit, layer pins, cfn-lint, sam validate, checkov, sam build

ci: check test ## Every quality gate and the whole test suite, as CI runs them

clean: ## Remove build output and caches (keeps .venv and .tools)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
