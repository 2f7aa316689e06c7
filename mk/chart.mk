# The Helm chart and the server image: static checks, and the generated chart README.
CHART := charts/model-server
# helm lint renders with this Kubernetes version, said explicitly rather than left to helm's build
# default: the newest schema set that kubernetes-validate ships, so deprecations show up early;
# tests/integration/chart checks the whole claimed range.
CHART_LINT_KUBE_VERSION := 1.37.0
CHART_VALUES_FILES := $(sort $(wildcard $(CHART)/ci/*-values.yaml $(CHART)/examples/*-values.yaml))

LINT_TARGETS += lint-chart

.PHONY: lint-chart chart-readme lock-image
# The README values table is checked by tests/integration/chart (make test), not here: each check once.
lint-chart: $(VENV)/.installed $(HELM_STAMP) ## hadolint, helm lint every values file
	$(VENV)/bin/hadolint service/Dockerfile
	helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $(CHART)
	@set -e; for f in $(CHART_VALUES_FILES); do \
	  echo "helm lint --strict -f $$f"; \
	  helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $(CHART) -f $$f; \
	done

chart-readme: $(VENV)/.installed ## regenerate the values table of charts/model-server/README.md
	$(PY) $(CHART)/hack/values_table.py

lock-image: $(VENV)/.installed ## re-resolve the image's build-backend lock (service/build-requirements.lock)
	$(UV_COMPILE) service/build-requirements.in -o service/build-requirements.lock
