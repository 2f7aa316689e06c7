# Monitoring: dashboards, rules and the adapter rule are generated from monitoring/mixin/ (one source)
# into charts/platform-monitoring/files/ and monitoring/values/; the tests in tests/integration/monitoring
# check them.

.PHONY: dashboards lint-monitoring
dashboards: $(VENV)/.installed ## render dashboards, alert/recording rules and adapter values from monitoring/mixin/
	$(PY) monitoring/generate.py

# The mixin's types are strict (drift.py's are checked with the package). That the generated files
# match their sources and that promtool accepts the rules is tested in tests/integration/monitoring.
lint-monitoring: $(VENV)/.installed
	$(VENV)/bin/mypy --strict --config-file pyproject.toml monitoring/generate.py monitoring/mixin

LINT_TARGETS += lint-monitoring
