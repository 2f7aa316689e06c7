# The Helm chart and the server image: static checks, and the generated chart README.
CHART := charts/model-server
# helm lint renders with this Kubernetes version (this helm is built without the ldflags that set its
# default, which would be 1.20 and below the chart's kubeVersion). The newest schema set that
# kubernetes-validate ships, so deprecations show up early; tests/chart checks the whole claimed range.
CHART_LINT_KUBE_VERSION := 1.37.0
CHART_VALUES_FILES := $(sort $(wildcard $(CHART)/ci/*-values.yaml $(CHART)/examples/*-values.yaml))
CHART_PY := $(CHART)/hack $(CHART)/scripts tests/chart

LINT_TARGETS += lint-chart

.PHONY: lint-chart chart-readme lock-image
lint-chart: $(VENV)/.installed $(HELM_STAMP) ## hadolint, ruff on the chart's Python, helm lint every values file, README check
	$(VENV)/bin/hadolint service/Dockerfile
	$(VENV)/bin/ruff check $(CHART_PY)
	$(VENV)/bin/ruff format --check $(CHART_PY)
	helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $(CHART)
	@set -e; for f in $(CHART_VALUES_FILES); do \
	  echo "helm lint --strict -f $$f"; \
	  helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $(CHART) -f $$f; \
	done
	$(PY) $(CHART)/hack/values_table.py --check

chart-readme: $(VENV)/.installed ## regenerate the values table of charts/model-server/README.md
	$(PY) $(CHART)/hack/values_table.py

lock-image: $(VENV)/.installed ## re-resolve the image's build-backend lock (service/build-requirements.lock)
	$(UV_COMPILE) service/build-requirements.in -o service/build-requirements.lock
