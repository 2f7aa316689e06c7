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

# Previews of both dashboards drawn from the cluster's Prometheus under the monitoring scenario of the
# cluster suite (tests/e2e/test_monitoring.py), one PNG per dashboard row, for docs/operations/monitoring.md.
# Needs a cluster, as `make e2e` does; `-k test_monitoring` selects that module (e2e always collects tests/e2e).
PREVIEWS_DIR := docs/operations/dashboard-previews
.PHONY: dashboard-previews
dashboard-previews: ## redraw the dashboard previews in docs/ from the cluster (runs the monitoring e2e tests)
	E2E_DASHBOARD_PREVIEWS=$(CURDIR)/$(PREVIEWS_DIR) $(MAKE) e2e E2E_WORKERS=1 E2E_ARGS="-k test_monitoring"
