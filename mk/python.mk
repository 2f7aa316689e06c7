# The Python environment: one venv at .venv, installed from the hashed locks with uv.
PYTHON_BOOTSTRAP ?= python3
UV_VERSION := 0.13.8
VENV   := $(CURDIR)/.venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
LOCKS  := service/requirements.lock requirements-dev.lock
UV_COMPILE = $(UV) pip compile -q --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: venv lock
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set, every server start in the tests
# would otherwise recompile scikit-learn, pandas and scipy (seconds each, under load).
venv: $(VENV)/.installed ## create .venv from the locks (re-runs when a lock changes)

$(VENV)/.installed: $(LOCKS) service/pyproject.toml
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync -q --compile-bytecode --python $(PY) --require-hashes $(LOCKS)
	$(UV) pip install -q --python $(PY) --no-deps -e service
	touch $@

lock: $(VENV)/.installed ## re-resolve the locks from the .in files (then commit them)
	$(UV_COMPILE) service/requirements.in -o service/requirements.lock
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.lock
