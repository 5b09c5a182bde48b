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

# The samconfig.toml environment that `make build` and `make deploy` use: both read its one parameter list,
# so the layer is built for the Architecture the functions are deployed with.
ENV ?= default

.PHONY: help setup run test check lint format typecheck bandit infra-lint infra-lint-variants checkov sam-validate build \
        layer-requirements check-layer-requirements audit bench bench-quick bytecode openapi fuzz load screenshot ci clean \
        deploy-edge deploy smoke

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

# The browser tests drive Debian's Chromium (tools/demo_page.py); they are skipped without it.
CHROMIUM_PATH ?= /usr/bin/chromium

setup: .venv/.synced $(SAM) $(CHECKOV) $(BUILD_PY) ## Create .venv (locked) and the isolated SAM CLI and checkov tools
	@test -x "$(CHROMIUM_PATH)" || echo "setup: Chromium not found at $(CHROMIUM_PATH): the browser tests will be skipped. Install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM_PATH=/path/to/chromium."
	@command -v node >/dev/null 2>&1 || echo "setup: Node.js not found: the JavaScript client's tests will be skipped. Install it (Debian/Ubuntu: sudo apt-get install nodejs)."

PORT     ?= 3000
WEB_PORT ?= 8080
WS_PORT  ?= 3001
run: .venv/.synced ## Set up and start the local API (chatbot-local; PORT=3000 WEB_PORT=8080 WS_PORT=3001)
	$(VENV_BIN)/chatbot-local serve --port $(PORT) --web-port $(WEB_PORT) --ws-port $(WS_PORT)

# Only the locked .venv: no test needs checkov, and the SAM CLI tests (tests/local/test_sam_local.py) are
# skipped until `make setup` has installed it.
test: .venv/.synced ## Run the whole test suite with coverage (unit, integration, infrastructure, local API)
	$(VENV_BIN)/pytest

# Deploy one environment (ENV=prod): refuses missing parameters, REPLACE_ME_ placeholders and two
# Architectures, runs `make check ENV=...` (gates and build), deploys, then runs the smoke test with one
# message. SMOKE_TOKEN (and SMOKE_TOKEN2) in the environment: a test user's access token (docs/deploy.md).
deploy: .venv/.synced $(SAM) $(BUILD_PY) ## Check samconfig, run the gates, build, deploy ENV (default|prod), smoke-test
	$(VENV_BIN)/python scripts/deploy.py --env $(ENV) --sam $(SAM)

# Tokens come from TOKEN/TOKEN2 through the environment (make exports command-line variables), never argv.
smoke: ## Check a deployed endpoint: make smoke URL=... TOKEN=... [TOKEN2=...] [ORIGIN=...] [CREATE=1]
	@test -n "$(URL)" || (echo "usage: make smoke URL=<ApiUrl> TOKEN=<access token> [TOKEN2=...] [ORIGIN=...] [CREATE=1]" && exit 2)
	@SMOKE_TOKEN="$$TOKEN" SMOKE_TOKEN2="$$TOKEN2" python3 scripts/smoke.py --url "$(URL)" \
		$(if $(ORIGIN),--origin "$(ORIGIN)") $(if $(CREATE),--create)

lint: .venv/.synced ## ruff (lint and format check)
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

format: .venv/.synced ## Apply ruff formatting and safe fixes
	$(VENV_BIN)/ruff check --fix .
	$(VENV_BIN)/ruff format .

# Strict over the shipped code, the local package, scripts/ and tools/ ([tool.mypy] in pyproject.toml);
# non-strict over the tests and benchmarks (mypy-tests.ini), one run per folder with its own conftest.py.
MYPY_TESTS := $(VENV_BIN)/mypy --config-file mypy-tests.ini
typecheck: .venv/.synced ## mypy: strict over shipped code, local package, scripts, tools; non-strict over tests and benchmarks
	$(VENV_BIN)/mypy
	$(MYPY_TESTS) tests benchmarks --exclude 'tests/(infrastructure|local|browser)/'
	$(MYPY_TESTS) tests/infrastructure
	$(MYPY_TESTS) tests/local
	$(MYPY_TESTS) tests/browser

bandit: .venv/.synced ## bandit over shipped and local code and the deploy scripts
	$(VENV_BIN)/bandit -q -c pyproject.toml -r layers functions local scripts

infra-lint: .venv/.synced sam-validate checkov ## cfn-lint, sam validate --lint and checkov on template.yaml and edge/template.yaml
	$(VENV_BIN)/cfn-lint template.yaml edge/template.yaml

sam-validate: $(SAM)
	$(SAM) validate --lint --template template.yaml --region eu-west-1
	$(SAM) validate --lint --template edge/template.yaml --region us-east-1

# checkov evaluates Conditions with the parameter defaults only and skips the resources they switch off,
# so it also scans copies whose defaults switch every optional part on (scripts/template_variant.py).
LINT_VARIANTS := $(CURDIR)/.lint-variants
checkov: $(CHECKOV) .venv/.synced
	@rm -rf $(LINT_VARIANTS)
	$(VENV_BIN)/python scripts/template_variant.py --lint-variants $(LINT_VARIANTS)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
		-f template.yaml -f edge/template.yaml $$(for f in $(LINT_VARIANTS)/*.yaml; do printf -- '-f %s ' "$$f"; done)

# SAM looks for samconfig.toml next to the template unless --config-file is absolute.
deploy-edge: $(SAM) ## Deploy the WAF web ACL (edge/template.yaml) to us-east-1; its WebAclArn output is the main stack's EdgeWebAclArn
	$(SAM) deploy --config-env edge --config-file $(CURDIR)/samconfig.toml --template-file edge/template.yaml

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

# The layer's Makefile installs wheels for LAYER_ARCHITECTURE: the Architecture this samconfig environment
# builds with (sam build does not tell a makefile build which architecture it builds for).
LAYER_ARCHITECTURE ?= $(shell python3 -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb")).get(sys.argv[1], {}).get("global", {}).get("parameters", {}).get("parameter_overrides", {}).get("Architecture", "arm64"))' $(ENV) 2>/dev/null || echo arm64)
build: $(SAM) $(BUILD_PY) ## sam build (no containers) into .aws-sam/build, then precompile its bytecode
	PATH="$(TOOLS)/build-python/bin:$$PATH" LAYER_ARCHITECTURE=$(LAYER_ARCHITECTURE) \
		$(SAM) build --config-env $(ENV) --template template.yaml --parallel
	@$(MAKE) --no-print-directory bytecode BUILD_DIR=.aws-sam/build

# Lambda cannot write bytecode under /var/task or /opt, so without .pyc files in the package every cold
# start compiles each imported module from source (docs/performance.md measures the difference).
# checked-hash: the interpreter hashes the source on import, so an edited .py is never shadowed by a
# stale .pyc; -s/-p record the paths Lambda sees (/var/task, /opt/python) in tracebacks, not this machine's.
# Modules no function imports get no bytecode (a .pyc only speeds up an import; without one the module
# still loads, from source): keeps the layer under its 12 MiB budget (docs/performance.md, item 5).
BUILD_DIR    ?= .aws-sam/build
INVALIDATION ?= checked-hash
NO_BYTECODE  := /(pydantic/(v1|deprecated|mypy)|cffi|pycparser|dateutil/(rrule|zoneinfo)|s3transfer|urllib3/contrib|aws_xray_sdk/ext/(?!(botocore|httplib|util|boto_utils|resources)\b)[a-z_0-9]+|aws_lambda_powertools/utilities/(parser|idempotency|batch|kafka|feature_flags|data_masking|streaming|circuit_breaker|auth_alpha|validation)|aws_lambda_powertools/event_handler/(appsync|bedrock_agent|bedrock_agent_function|graphql_appsync|events_appsync|vpc_lattice|lambda_function_url))(/|\.py$$)
bytecode: $(BUILD_PY) ## Precompile the .pyc files of a sam build output (BUILD_DIR, default .aws-sam/build)
	@set -e; for dir in $(BUILD_DIR)/*/; do \
		dir=$${dir%/}; case "$$dir" in *Layer) runtime=/opt ;; *) runtime=/var/task ;; esac; \
		$(BUILD_PY) -m compileall -q -j 0 --invalidation-mode $(INVALIDATION) -x '$(NO_BYTECODE)' -s "$$dir" -p "$$runtime" "$$dir"; \
	done

layer-requirements: $(UV) ## Regenerate layers/security/requirements.txt (hashed) from uv.lock
	$(UV) export --locked --only-group layer --no-emit-project --format requirements-txt --no-header \
		--output-file layers/security/requirements.txt --quiet

check-layer-requirements: $(UV) ## Fail when the layer requirements drift from uv.lock
	$(UV) export --locked --only-group layer --no-emit-project --format requirements-txt --no-header --quiet \
		| diff -u layers/security/requirements.txt - || (echo "layer requirements drift: run make layer-requirements" && exit 1)

AUDIT_SERVICE := https://pypi.org/pypi/pip/json
audit: .venv/.synced ## pip-audit --strict (needs to reach the PyPI vulnerability service)
	@$(VENV_BIN)/python -c "import sys, urllib.request; urllib.request.urlopen('$(AUDIT_SERVICE)', timeout=10)" 2>/dev/null \
		|| { echo "audit: cannot reach the vulnerability service ($(AUDIT_SERVICE)): pip-audit needs network access to PyPI's vulnerability data; run make audit where it is reachable (CI does)."; exit 1; }
	$(UV) run --with pip-audit==2.10.1 pip-audit --strict --skip-editable

openapi: .venv/.synced ## Regenerate docs/openapi.json from the chat routes (a test fails when it drifts)
	PYTHONPATH=layers/security:functions/chat $(VENV_BIN)/python -m tools.openapi docs/openapi.json

bench: .venv/.synced $(SAM) $(BUILD_PY) ## Run every benchmarks/bench_*.py, then one table of every budget of docs/performance.md (ARGS=--quick: CI mode)
	$(VENV_BIN)/python benchmarks/run_all.py $(ARGS)

bench-quick: .venv/.synced ## CI guard: AWS calls per turn, authorizer modules, package sizes of make build's output; never a time
	$(VENV_BIN)/python benchmarks/run_all.py --quick

fuzz: .venv/.synced ## Schemathesis on docs/openapi.json against chatbot-local: >= 1,000 cases, prints cases and failures
	$(VENV_BIN)/python -m tools.api_fuzzer --cases-per-operation 110 --minimum 1000

load: .venv/.synced ## Bounded loopback load test of chatbot-local: 20 clients, 2,000 turns, throughput and latency percentiles
	$(VENV_BIN)/python -m tools.load_api --clients 20 --turns 2000 --max-seconds 600

screenshot: .venv/.synced ## Retake the README's screenshot (docs/demo.png) with Chromium against chatbot-local
	$(VENV_BIN)/python -m tools.take_screenshot

check: lint typecheck bandit check-layer-requirements infra-lint build ## Every static gate: ruff, mypy, bandit, layer pins, cfn-lint, sam validate, checkov, sam build

ci: check bench-quick test ## Every quality gate, the structural performance gates and the whole test suite, as CI runs them

clean: ## Remove build output and caches (keeps .venv and .tools)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
