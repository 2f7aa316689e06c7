# Monitoring: dashboards, rules and the adapter rule are generated from monitoring/mixin/ (one source)
# into the chart's files/ and monitoring/values/; the tests in tests/monitoring check them.
PROMTOOL_STAMP := $(filter $(STAMPS)/apt-%,$(TOOL_STAMPS))

.PHONY: dashboards lint-monitoring
dashboards: $(VENV)/.installed ## render dashboards, alert/recording rules and adapter values from monitoring/mixin/
	$(PY) monitoring/generate.py

# The generated files must match their sources, and promtool must accept the rule file.
lint-monitoring: $(VENV)/.installed $(PROMTOOL_STAMP)
	$(PY) monitoring/generate.py --check
	promtool check rules charts/model-server/files/prometheus-rules.yaml

LINT_TARGETS += lint-monitoring
