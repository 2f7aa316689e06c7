# make bench: this server against MLServer, a FastAPI tutorial server and a constant-answer ceiling, in one
# run (service/bench/README.md). Not part of make test: it takes ~10 minutes and wants the machine to itself.
# Everything it installs lives under .bench/ (git-ignored): MLServer gets its own venv from a hashed lock.
BENCH_DIR     := $(CURDIR)/.bench
MLSERVER_VENV := $(BENCH_DIR)/mlserver-venv
MLSERVER_LOCK := service/bench/mlserver-requirements.lock

.PHONY: bench bench-quick bench-lock bench-workers
bench: venv demo apt-tools $(MLSERVER_VENV)/.installed $(BENCH_DIR)/.bytecode ## benchmark side by side (~10 min; BENCH_DURATION=2 shortens)
	$(PY) service/bench/run.py

bench-quick: venv demo apt-tools $(MLSERVER_VENV)/.installed $(BENCH_DIR)/.bytecode ## a 2-minute subset of make bench, for development
	BENCH_DURATION=$${BENCH_DURATION:-2} BENCH_LOADS=$${BENCH_LOADS:-c1,c64,b32} \
	BENCH_CONTENDERS=$${BENCH_CONTENDERS:-ours,ours-nobatch,ceiling,mlserver-batch} $(PY) service/bench/run.py

$(MLSERVER_VENV)/.installed: $(MLSERVER_LOCK) | $(VENV)/.installed
	test -x $(MLSERVER_VENV)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(MLSERVER_VENV)
	$(UV) pip sync -q --python $(MLSERVER_VENV)/bin/python --require-hashes $(MLSERVER_LOCK)
	touch $@

# Start-up is measured as the image runs it: with bytecode compiled at install (pip does that in the
# Dockerfile; uv does not, and with PYTHONDONTWRITEBYTECODE set every start would recompile ~3 s of code).
$(BENCH_DIR)/.bytecode: $(VENV)/.installed
	$(PY) -m compileall -q -j 0 $(VENV)/lib/python3.11/site-packages > /dev/null || true
	@mkdir -p $(BENCH_DIR) && touch $@

bench-lock: $(VENV)/.installed ## re-resolve the MLServer peer's lock (then commit it)
	$(UV_COMPILE) service/bench/mlserver-requirements.in -o $(MLSERVER_LOCK)

bench-workers: venv demo apt-tools $(BENCH_DIR)/.bytecode ## one worker process per pod or two? (~2 min; README performance section)
	$(PY) service/bench/workers.py
