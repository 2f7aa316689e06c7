# Reliability and security: faults, overload, soak, fuzzing, hostile bundles, auth and the
# kube-score policy scan are pytest suites in tests/integration/reliability/ (part of make test). Here: the long
# soak, the overload curve that make bench prints, and the lint of this area's Python.
SOAK_SECONDS ?= 3600
SOAK_RATE ?= 40

LINT_TARGETS += lint-reliability

.PHONY: soak bench-overload lint-reliability
soak: venv demo ## steady traffic for SOAK_SECONDS (default an hour); fails unless RSS, fds and threads stay flat
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_RATE=$(SOAK_RATE) $(PY) -m pytest tests/integration/reliability/test_soak.py -s -q -rN

bench-overload: venv demo apt-tools $(VEGETA_STAMP) ## the overload curve: accepted rate, 429/504, p99, RSS and CPU at 0.5x-16x the sustainable load
	$(PY) service/bench/overload.py

# make bench prints the overload curve first (its own server, pinned like the others).
bench: bench-overload

lint-reliability: $(VENV)/.installed
	$(VENV)/bin/mypy --strict --config-file pyproject.toml service/soak
