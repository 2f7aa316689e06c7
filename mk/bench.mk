# make bench: this server against MLServer, a FastAPI tutorial server and a constant-answer ceiling, in one
# run (service/bench/README.md). Not part of make test: it takes ~14 minutes and wants the machine to itself.
# Everything it installs lives under .bench/ (git-ignored): MLServer gets its own venv from a hashed lock.
BENCH_DIR     := $(CURDIR)/.bench
MLSERVER_VENV := $(BENCH_DIR)/mlserver-venv
MLSERVER_LOCK := service/bench/mlserver-requirements.lock
RUNTIME_VENV  := $(BENCH_DIR)/runtime-venv

.PHONY: bench bench-quick bench-lock bench-workers
bench: venv demo apt-tools $(GHZ_STAMP) $(MLSERVER_VENV)/.installed $(RUNTIME_VENV)/.installed ## benchmark side by side (~14 min; BENCH_DURATION=2 shortens)
	$(PY) service/bench/run.py

bench-quick: venv demo apt-tools $(GHZ_STAMP) $(MLSERVER_VENV)/.installed $(RUNTIME_VENV)/.installed ## a 3-minute subset of make bench, for development
	BENCH_DURATION=$${BENCH_DURATION:-2} BENCH_LOADS=$${BENCH_LOADS:-c1,c64,b32} \
	BENCH_CONTENDERS=$${BENCH_CONTENDERS:-ours,ours-nobatch,ceiling,mlserver-batch,ours-grpc,mlserver-batch-grpc} \
	$(PY) service/bench/run.py

$(MLSERVER_VENV)/.installed: $(MLSERVER_LOCK) | $(VENV)/.installed
	test -x $(MLSERVER_VENV)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(MLSERVER_VENV)
	$(UV) pip sync -q --python $(MLSERVER_VENV)/bin/python --require-hashes $(MLSERVER_LOCK)
	touch $@

# Cold start and idle memory are measured in the environment the image has: the runtime lock only, the
# package installed (not editable), bytecode compiled at install, and at -OO (PYTHONOPTIMIZE=2, as the
# image runs) for the venv and the interpreter's standard library. The dev venv also holds pytest and
# rich, which scikit-learn and skops import when they are present (~0.1 s that no pod pays).
$(RUNTIME_VENV)/.installed: service/requirements.lock service/pyproject.toml $(wildcard service/model_server/*.py service/model_server/*/*.py) | $(VENV)/.installed
	test -x $(RUNTIME_VENV)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(RUNTIME_VENV)
	$(UV) pip sync -q --compile-bytecode --python $(RUNTIME_VENV)/bin/python --require-hashes service/requirements.lock
	$(UV) pip install -q --compile-bytecode --reinstall-package model-server --python $(RUNTIME_VENV)/bin/python --no-deps ./service
	$(RUNTIME_VENV)/bin/python -OO -m compileall -q -j 0 $(RUNTIME_VENV)/lib >/dev/null
	$(RUNTIME_VENV)/bin/python -OO -m compileall -q -j 0 -x '/(test|tests|idle_test)/' \
	  "$$($(RUNTIME_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" >/dev/null
	touch $@

bench-lock: $(VENV)/.installed ## re-resolve the MLServer peer's lock (then commit it)
	$(UV_COMPILE) service/bench/mlserver-requirements.in -o $(MLSERVER_LOCK)

bench-workers: venv demo apt-tools $(RUNTIME_VENV)/.installed ## one worker process per pod or two? (~2 min; docs/performance.md)
	$(PY) service/bench/workers.py
