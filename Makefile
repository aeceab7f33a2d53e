# The two commands of a fresh machine: `make serve` (run the gateway locally) and `make test` (install + all checks).
PYTHON ?= python3
SAM_VENV ?= .venv-sam

.PHONY: install serve test lint sam-cli agents bench

install:
	$(PYTHON) -m pip install --quiet -e ".[test]"

serve:
	$(PYTHON) -m pip install --quiet -e .
	kiro-gateway serve

# aws-sam-cli pins exact boto3/click versions: it lives in its own virtual environment (.venv-sam).
sam-cli:
	PYTHON=$(PYTHON) bash scripts/install-sam.sh

# Claude Code and Codex CLI, driven by the end-to-end tests (npm registry, pinned versions, in .agents/).
agents:
	bash scripts/install-agents.sh

lint:
	ruff check .

test: install sam-cli agents lint
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam AGENTS_DIR=$(CURDIR)/.agents $(PYTHON) -m pytest

bench: install
	$(PYTHON) bench/bench_stream.py
	$(PYTHON) bench/bench_gateway.py
