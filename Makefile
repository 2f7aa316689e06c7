# The one entry point. `make help` lists the targets; README.md shows the two a newcomer needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PORT ?= 8000
BUNDLES := $(CURDIR)/build/bundles
DEMO_BUNDLE := $(BUNDLES)/iris-classifier

# Pinned tools, the Python environment, then one fragment per area (service, chart, monitoring, ...).
# Each area fragment appends its checks to LINT_TARGETS.
LINT_TARGETS :=
include mk/tools.mk mk/python.mk
include $(filter-out mk/tools.mk mk/python.mk,$(sort $(wildcard mk/*.mk)))

.PHONY: help serve demo test test-unit lint lint-python clean
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort -u | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

demo: $(DEMO_BUNDLE)/metadata.json ## build the demo model bundles (reproducible, no download)
$(DEMO_BUNDLE)/metadata.json: $(VENV)/.installed $(wildcard service/model_server/*.py service/model_server/*/*.py)
	$(VENV)/bin/model-server demo --out $(BUNDLES)

serve: venv demo ## serve the demo model on http://127.0.0.1:$(PORT)
	PORT=$(PORT) exec $(VENV)/bin/model-server serve $(DEMO_BUNDLE)

# Every check, each once: tools, lint (static analysers), then one pytest run of tests/unit and
# tests/integration (helm-unittest, kubeconform, promtool, the real Prometheus and the checks that
# generated files are current are driven from pytest, so CI reads a single test count).
PYTEST_ARGS ?=
test: tools venv demo lint ## install what is missing and run every check
	$(PY) -m pytest $(PYTEST_ARGS)

# The loop while editing: tests/unit needs only the venv (no tools, no linters, no server process).
test-unit: venv ## the fast tests (seconds; no tools, no processes)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv lint-python $(LINT_TARGETS) ## static checks (also part of make test)

# One ruff run over every Python file in the repository (config in pyproject.toml), instead of a list
# per area that a new file could miss.
lint-python: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean: ## remove build output (keeps .tools and .venv)
	rm -rf build .pytest_cache
