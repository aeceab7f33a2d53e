# The two commands of a fresh machine: `make serve` (run the gateway locally) and `make test` (install + all checks).
PYTHON ?= python3
SAM_VENV ?= .venv-sam

.PHONY: install serve test lint sam-cli agents bump-agents browser bench build-python package-sizes

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

# Pins the newest Claude Code and Codex releases (npm view), installs them and reruns the end-to-end tests on them.
bump-agents:
	PYTHON=$(PYTHON) bash scripts/install-agents.sh --bump

# The usage page's browser test: Playwright for Python driving Debian's Chromium (no `playwright install`: it
# downloads browsers from a CDN). apt-get runs only when Chromium is missing (as root, as CI runs).
browser:
	$(PYTHON) -m pip install --quiet "playwright>=1.45"
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# ruff, and the import layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
lint:
	ruff check .
	PYTHONPATH=.:functions lint-imports

# The Lambda runtime's Python (3.12) byte-compiles the shipped package; `sam build` fails without it. Checked up front
# so a machine without it fails here, with the ways to get one, instead of deep inside the build tests.
build-python:
	$(PYTHON) scripts/compile_bytecode.py --check --python-version 3.12

# Zipped and unpacked sizes of the layer and the functions, from a fresh `sam build` (docs/deploy.md).
package-sizes: sam-cli
	$(SAM_VENV)/bin/sam build
	$(PYTHON) scripts/package_sizes.py .aws-sam/build

test: install sam-cli agents browser lint build-python
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam AGENTS_DIR=$(CURDIR)/.agents $(PYTHON) -m pytest

bench: install
	$(PYTHON) bench/bench_stream.py
	$(PYTHON) bench/bench_gateway.py
