# The Helm charts and the server image: static checks, and the charts' generated READMEs.
# charts/model-server installs one model; charts/platform-monitoring the rules and dashboards over all
# of them, once per cluster.
CHARTS := charts/model-server charts/platform-monitoring
CHART := charts/model-server
# helm lint renders with this Kubernetes version, said explicitly rather than left to helm's build
# default: the newest schema set that kubernetes-validate ships, so deprecations show up early;
# tests/integration/chart checks the whole claimed range.
CHART_LINT_KUBE_VERSION := 1.37.0
# Every values file a chart is installed with: the scenarios in ci/ and the documented examples.
CHART_VALUES_FILES := $(sort $(foreach c,$(CHARTS),$(wildcard $(c)/ci/*-values.yaml $(c)/examples/*-values.yaml)))
# helm-docs keeps values.yaml's order, which groups the values the way the file explains them.
HELM_DOCS := helm-docs --sort-values-order file --log-level warning

LINT_TARGETS += lint-chart

.PHONY: lint-chart chart-readme lock-image
lint-chart: $(VENV)/.installed $(HELM_STAMP) $(HELM_DOCS_STAMP) ## hadolint, helm lint every chart and values file, README check
	$(VENV)/bin/hadolint service/Dockerfile
	@set -e; for c in $(CHARTS); do \
	  echo "helm lint --strict $$c"; \
	  helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $$c; \
	done
	@set -e; for f in $(CHART_VALUES_FILES); do \
	  c=$${f%/*/*}; echo "helm lint --strict $$c -f $$f"; \
	  helm lint --strict --quiet --kube-version $(CHART_LINT_KUBE_VERSION) $$c -f $$f; \
	done
	@set -e; for c in $(CHARTS); do \
	  $(HELM_DOCS) --dry-run --chart-search-root $$c | diff -u $$c/README.md - >/dev/null \
	    || { echo "$$c/README.md is stale: run \`make chart-readme\` and commit it" >&2; exit 1; }; \
	done

chart-readme: $(HELM_DOCS_STAMP) ## regenerate the values tables of the charts' README.md (helm-docs)
	@set -e; for c in $(CHARTS); do $(HELM_DOCS) --chart-search-root $$c; done

lock-image: $(VENV)/.installed ## re-resolve the image's build-backend lock (service/build-requirements.lock)
	$(UV_COMPILE) service/build-requirements.in -o service/build-requirements.lock
