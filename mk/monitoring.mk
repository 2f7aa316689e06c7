# Monitoring: dashboards, rules and the adapter rule are generated from monitoring/mixin/ (one source)
# into charts/platform-monitoring/files/ and monitoring/values/; the tests in tests/monitoring check them.

.PHONY: dashboards lint-monitoring
dashboards: $(VENV)/.installed ## render dashboards, alert/recording rules and adapter values from monitoring/mixin/
	$(PY) monitoring/generate.py

# The generated files must match their sources, promtool must accept the rule file, and the mixin's
# types are strict; drift.py's types are checked with the package.
lint-monitoring: $(VENV)/.installed apt-tools
	$(VENV)/bin/mypy --strict --config-file pyproject.toml monitoring/generate.py monitoring/mixin
	$(PY) monitoring/generate.py --check
	promtool check rules charts/platform-monitoring/files/prometheus-rules.yaml

LINT_TARGETS += lint-monitoring
