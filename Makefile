# trainstack: `make demo` (offline, end to end) and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?=
# Node 20 is past end of life for jsii; its banner on every CDK call hides real output.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
CDK := npx --no-install cdk
ENV_CONTEXT := $(if $(ENV),-c env=$(ENV),)

.PHONY: help install synth lint test test-cpu test-fast test-week demo deploy diff smoke bench local-up local-down notebook clean

help:
	@echo "make demo              synth, deploy into the embedded AWS, run the training pipeline, print the result"
	@echo "make test              the whole test suite (lint included); timings in .bench/test-report.md"
	@echo "make test-cpu          make test's pytest phase, its CPU split by kind of process (.bench/suite-cpu.md)"
	@echo "make test-fast         the suite without the slow tests (real training, deploys), for the inner loop"
	@echo "make test-week         a whole week of waiting for capacity with 150 jobs held (about 10 minutes)"
	@echo "make synth [ENV=name]  synthesize every environment (or one) and cfn-lint the templates"
	@echo "make deploy ENV=name   deploy an environment to its real AWS account (uses your AWS credentials;"
	@echo "                       without a terminal add REQUIRE_APPROVAL=never after reviewing make diff)"
	@echo "make smoke ENV=name    check a deployed environment on its account: 3 tiny runs, warm-pool reuse, cost"
	@echo "make bench             print synth, training, deploy and demo timings"
	@echo "make local-up / local-down   the embedded AWS in the background with 'local' deployed and its data staged"
	@echo "make notebook          JupyterLab on notebooks/, pointed at the embedded AWS (after make local-up)"

# pip compiles every installed file on one core (85 of this target's 127 s here); compileall spreads it over all
# cores. The .pyc files must exist: with PYTHONDONTWRITEBYTECODE=1 (set on this machine) every process would
# otherwise compile torch and transformers again. Like pip, it leaves a file this Python cannot compile (torch
# ships Python 3.12-only test helpers) to fail if imported, hence `|| true`.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet --no-compile -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-compile --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -qq -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') || true
	touch $@

# A second environment for the SageMaker SDK v3 notebook (see requirements-sdk.txt for why).
.venv-sdk/.installed: requirements-sdk.txt
	test -x .venv-sdk/bin/python || $(PYTHON) -m venv .venv-sdk
	.venv-sdk/bin/pip install --quiet --upgrade pip==25.3
	.venv-sdk/bin/pip install --quiet -r requirements-sdk.txt
	touch $@

# SageMaker SDK v2 (the seed's Estimator) as an overlay on .venv-sdk: see requirements-sdk-v2.txt.
.sdk-v2/.installed: requirements-sdk-v2.txt .venv-sdk/.installed
	rm -rf .sdk-v2
	.venv-sdk/bin/pip install --quiet --no-deps --target .sdk-v2 -r requirements-sdk-v2.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# W3005 (a DependsOn that a GetAtt already implies) comes from CDK's own StateMachine construct.
synth: install
	$(CDK) synth --quiet $(ENV_CONTEXT)
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/assembly-*/*.template.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two xdist workers, each a process with its own embedded AWS that deploys the platform once for its share of
# the deployed platform's test modules (tests/conftest.py balances them). Measured faster on this 2-core machine (README "Development"); 0 = in process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
PYTEST := TRAINSTACK_SDK_PYTHON=$(CURDIR)/.venv-sdk/bin/python TRAINSTACK_SDK_V2_PATH=$(CURDIR)/.sdk-v2 \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup
# `$(call timed,phase,command)`: run it and append "phase<TAB>seconds" to .bench/test-phases.tsv.
timed = start=$$EPOCHREALTIME; $(2) && mkdir -p .bench && \
	awk -v s=$$start -v e=$$EPOCHREALTIME 'BEGIN { printf "$(1)\t%.1f\n", e - s }' >> .bench/test-phases.tsv

# The two virtual environments and node_modules do not depend on each other: installed side by side, a fresh
# clone's install phase took 153 s here instead of 205 s.
test:
	@mkdir -p .bench && rm -f .bench/test-phases.tsv .bench/test-durations.json
	@$(call timed,install,$(MAKE) --no-print-directory -j 3 install .venv-sdk/.installed .sdk-v2/.installed)
	@$(call timed,lint,$(MAKE) --no-print-directory lint)
	$(call timed,pytest,TRAINSTACK_TEST_DURATIONS=$(CURDIR)/.bench/test-durations.json $(PYTEST) $(PYTEST_ARGS))
	@$(BIN)/python bench/suite_report.py $(PYTEST_WORKERS)

# make test's pytest command, with the CPU of every process it starts split by kind (.bench/suite-cpu.md).
test-cpu: install .venv-sdk/.installed .sdk-v2/.installed
	$(BIN)/python bench/suite_cpu.py env $(PYTEST) $(PYTEST_ARGS)

test-fast: install .venv-sdk/.installed .sdk-v2/.installed
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

# The longest allowed capacity wait run whole (1,030 looks over 150 held jobs): about 10 minutes on this machine,
# so outside make test, which checks the same arithmetic from four measured looks.
test-week: install
	$(PYTEST) --week -m week $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m trainstack.demo

deploy: install
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<name> (one of: $$(ls config | sed -n 's/\.yaml$$//p' | tr '\n' ' '))"; exit 2; }
	$(BIN)/python -m trainstack.deploy $(ENV) $(if $(REQUIRE_APPROVAL),--require-approval $(REQUIRE_APPROVAL),)

diff: install
	@test -n "$(ENV)" || { echo "usage: make diff ENV=<name>"; exit 2; }
	$(CDK) diff '$(ENV)/*' -c env=$(ENV)

# Real money: the runs use the environment's training.instance_type unless SMOKE_ARGS names another, e.g.
# --instance-type ml.g5.xlarge (python -m trainstack.smoke -h).
smoke: install
	@test -n "$(ENV)" || { echo "usage: make smoke ENV=<name> [SMOKE_ARGS='--instance-type ml.g5.xlarge']"; exit 2; }
	$(BIN)/python -m trainstack.smoke --env $(ENV) $(SMOKE_ARGS)

bench: install
	$(BIN)/python bench/run.py

# The server, then the `local` stacks, the tiny model, the sample data and the notebooks' resources file.
local-up: install
	$(BIN)/python -m trainstack.embedded_aws up
	$(BIN)/python -m trainstack.local_platform

# JupyterLab on notebooks/ with the embedded AWS's endpoint, dummy credentials and the resources file.
notebook: install
	@test -f .local-aws/notebook-resources.json || { echo "run make local-up first"; exit 2; }
	$(BIN)/python -m trainstack.local_notebook

local-down:
	$(BIN)/python -m trainstack.embedded_aws down

clean:
	rm -rf cdk.out .pytest_cache .ruff_cache .local-aws .sdk-v2
