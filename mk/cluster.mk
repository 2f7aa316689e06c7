# The local Kubernetes cluster, the images it runs, and the cluster test suite (docs/development/cluster.md).
#
#   make cluster        build (once) and start a single-node cluster; writes .cluster/kubeconfig
#   make cluster-down   stop it and undo every change it made to the machine
#   make images         build the server image from service/Dockerfile (and the add-on images)
#   make e2e            load the images, install the add-ons, run tests/e2e against KUBECONFIG
#
# Versions are pinned in mk/tools.mk; addresses and names in cluster/settings.sh.

CLUSTER_BIN   := $(TOOLS_DIR)/cluster/bin
CLUSTER_STATE := $(CURDIR)/.cluster
GO_BUILD_SH   := cluster/go-build.sh

# --- Binaries from the Go module proxy --------------------------------------------------------------
# Kubernetes: one `go build` of six commands from a scratch module that requires k8s.io/kubernetes
# (its staging modules published as v0.X.Y). Unstamped, the servers report v0.0.0 and helm's kubeVersion
# check fails, so the version goes in through ldflags, as the release build does.
KUBE_STAGING_VERSION := $(patsubst v1.%,v0.%,$(KUBERNETES_VERSION))
KUBE_VERSION_WORDS   := $(subst ., ,$(patsubst v%,%,$(KUBERNETES_VERSION)))
KUBE_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version, \
  -X $(p).gitVersion=$(KUBERNETES_VERSION) -X $(p).gitMajor=$(word 1,$(KUBE_VERSION_WORDS)) \
  -X $(p).gitMinor=$(word 2,$(KUBE_VERSION_WORDS)) -X $(p).gitTreeState=clean)
KUBE_COMMANDS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
KUBERNETES_STAMP := $(STAMPS)/kubernetes-$(KUBERNETES_VERSION)
$(KUBERNETES_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name kubernetes --module k8s.io/kubernetes --version $(KUBERNETES_VERSION) \
	  --wrap --staging $(KUBE_STAGING_VERSION) --tags providerless --ldflags '$(KUBE_LDFLAGS)' \
	  --out $(CLUSTER_BIN) $(foreach c,$(KUBE_COMMANDS),--pkg k8s.io/kubernetes/cmd/$(c))
	@mkdir -p $(STAMPS) && touch $@

# CoreDNS with only the plugins a cluster DNS needs (cluster/images/coredns/main.go): no `forward`, so
# nothing resolves past the cluster.
COREDNS_STAMP := $(STAMPS)/coredns-$(COREDNS_VERSION)-$(shell cat cluster/images/coredns/main.go | sha256sum | cut -c1-12)
$(COREDNS_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name coredns --module github.com/coredns/coredns --version $(COREDNS_VERSION) \
	  --wrap --main $(CURDIR)/cluster/images/coredns --out $(CLUSTER_BIN) --pkg .
	@mkdir -p $(STAMPS) && touch $@

# kubectl alone, for `make e2e` against a cluster this machine did not build (kind in GitHub Actions).
KUBECTL_STAMP := $(STAMPS)/kubectl-$(KUBERNETES_VERSION)
$(KUBECTL_STAMP):
	if [ -f $(KUBERNETES_STAMP) ]; then true; else \
	  nice -n 10 $(GO_BUILD_SH) --name kubectl --module k8s.io/kubernetes --version $(KUBERNETES_VERSION) \
	    --wrap --staging $(KUBE_STAGING_VERSION) --tags providerless --ldflags '$(KUBE_LDFLAGS)' \
	    --out $(CLUSTER_BIN) --pkg k8s.io/kubernetes/cmd/kubectl; fi
	@mkdir -p $(STAMPS) && touch $@

CRICTL_STAMP := $(STAMPS)/crictl-$(CRI_TOOLS_VERSION)
$(CRICTL_STAMP):
	$(GO_BUILD_SH) --name cri-tools --module sigs.k8s.io/cri-tools --version $(CRI_TOOLS_VERSION) \
	  --ldflags '-X sigs.k8s.io/cri-tools/pkg/version.Version=$(CRI_TOOLS_VERSION)' \
	  --out $(CLUSTER_BIN) --pkg ./cmd/crictl
	@mkdir -p $(STAMPS) && touch $@

METRICS_SERVER_STAMP := $(STAMPS)/metrics-server-$(METRICS_SERVER_VERSION)
$(METRICS_SERVER_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name metrics-server --module sigs.k8s.io/metrics-server --version $(METRICS_SERVER_VERSION) \
	  --ldflags '-X k8s.io/component-base/version.gitVersion=$(METRICS_SERVER_VERSION)' \
	  --out $(CLUSTER_BIN) --pkg ./cmd/metrics-server
	@mkdir -p $(STAMPS) && touch $@

# The monitoring stack. The Operator's go.mod replaces two of its own packages with local folders that
# the module zip leaves out: they are published as modules of the same version. Prometheus without
# the service discoveries it does not need here (Kubernetes only): a third of the binary.
PROMETHEUS_OPERATOR_MODULE := github.com/prometheus-operator/prometheus-operator
PROMETHEUS_OPERATOR_STAMP := $(STAMPS)/prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION)
$(PROMETHEUS_OPERATOR_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name prometheus-operator --module $(PROMETHEUS_OPERATOR_MODULE) \
	  --version $(PROMETHEUS_OPERATOR_VERSION) \
	  --nested pkg/apis/monitoring=$(PROMETHEUS_OPERATOR_MODULE)/pkg/apis/monitoring@$(PROMETHEUS_OPERATOR_VERSION) \
	  --nested pkg/client=$(PROMETHEUS_OPERATOR_MODULE)/pkg/client@$(PROMETHEUS_OPERATOR_VERSION) \
	  --ldflags '-X github.com/prometheus/common/version.Version=$(PROMETHEUS_OPERATOR_VERSION:v%=%)' \
	  --out $(CLUSTER_BIN) --pkg ./cmd/operator --pkg ./cmd/prometheus-config-reloader
	@mkdir -p $(STAMPS) && touch $@

PROMETHEUS_STAMP := $(STAMPS)/prometheus-$(PROMETHEUS_VERSION)
$(PROMETHEUS_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name prometheus --module github.com/prometheus/prometheus \
	  --version $(PROMETHEUS_MODULE_VERSION) --tags remove_all_sd,enable_kubernetes_sd \
	  --ldflags '-X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION:v%=%)' \
	  --out $(CLUSTER_BIN) --pkg ./cmd/prometheus
	@mkdir -p $(STAMPS) && touch $@

KUBE_STATE_METRICS_STAMP := $(STAMPS)/kube-state-metrics-$(KUBE_STATE_METRICS_VERSION)
$(KUBE_STATE_METRICS_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name kube-state-metrics --module k8s.io/kube-state-metrics/v2 \
	  --version $(KUBE_STATE_METRICS_VERSION) \
	  --ldflags '-X github.com/prometheus/common/version.Version=$(KUBE_STATE_METRICS_VERSION)' \
	  --out $(CLUSTER_BIN) --pkg .
	@mkdir -p $(STAMPS) && touch $@

PROMETHEUS_ADAPTER_STAMP := $(STAMPS)/prometheus-adapter-$(PROMETHEUS_ADAPTER_VERSION)
$(PROMETHEUS_ADAPTER_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name prometheus-adapter --module sigs.k8s.io/prometheus-adapter \
	  --version $(PROMETHEUS_ADAPTER_VERSION) --out $(CLUSTER_BIN) --pkg ./cmd/adapter
	@mkdir -p $(STAMPS) && touch $@

MONITORING_STAMPS := $(PROMETHEUS_OPERATOR_STAMP) $(PROMETHEUS_STAMP) $(KUBE_STATE_METRICS_STAMP) \
  $(PROMETHEUS_ADAPTER_STAMP)

# Argo CD: one binary for every component. Its go.mod replaces its gitops-engine with a local folder the
# module zip leaves out; the same code is published as a module of the same version.
ARGOCD_MODULE := github.com/argoproj/argo-cd/v3
ARGOCD_STAMP  := $(STAMPS)/argocd-$(ARGOCD_VERSION)
$(ARGOCD_STAMP):
	GOTOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) nice -n 10 $(GO_BUILD_SH) --name argocd --module $(ARGOCD_MODULE) \
	  --version $(ARGOCD_VERSION) \
	  --nested gitops-engine=github.com/argoproj/argo-cd/gitops-engine/v3@$(ARGOCD_VERSION) \
	  --ldflags '-X $(ARGOCD_MODULE)/common.version=$(ARGOCD_VERSION:v%=%)' \
	  --out $(CLUSTER_BIN)/argocd-cmd --pkg ./cmd
	mv $(CLUSTER_BIN)/argocd-cmd/cmd $(CLUSTER_BIN)/argocd && rmdir $(CLUSTER_BIN)/argocd-cmd
	@mkdir -p $(STAMPS) && touch $@

# Argo Rollouts: the controller and the kubectl plugin. The plugin embeds a dashboard that the module zip
# leaves out (its release builds it with npm): a placeholder page stands in, the dashboard is not used here.
ARGO_ROLLOUTS_MODULE := github.com/argoproj/argo-rollouts
ARGO_ROLLOUTS_STAMP  := $(STAMPS)/argo-rollouts-$(ARGO_ROLLOUTS_VERSION)
$(ARGO_ROLLOUTS_STAMP):
	GOTOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) nice -n 10 $(GO_BUILD_SH) --name argo-rollouts --module $(ARGO_ROLLOUTS_MODULE) \
	  --version $(ARGO_ROLLOUTS_VERSION) --placeholder server/static/index.html \
	  --ldflags '-X $(ARGO_ROLLOUTS_MODULE)/utils/version.version=$(ARGO_ROLLOUTS_VERSION)' \
	  --out $(CLUSTER_BIN) --pkg ./cmd/rollouts-controller --pkg ./cmd/kubectl-argo-rollouts
	@mkdir -p $(STAMPS) && touch $@

GATEWAY_API_MODULE := sigs.k8s.io/gateway-api

# The JSON schemas kubeconform checks the chart's Rollout, AnalysisTemplate and HTTPRoute against, from the
# CRDs of the module versions the cluster runs (tests/integration/chart/test_crd_schemas.py checks they are current).
.PHONY: crd-schemas
crd-schemas: $(VENV)/.installed ## rewrite tests/schemas/crds' Argo Rollouts and HTTPRoute schemas from their pinned modules' CRDs
	dir=$$(GOTOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) GOFLAGS=-mod=mod cluster/module-dir.sh $(ARGO_ROLLOUTS_MODULE)@$(ARGO_ROLLOUTS_VERSION)) && \
	  gw=$$(GOFLAGS=-mod=mod cluster/module-dir.sh $(GATEWAY_API_MODULE)@$(GATEWAY_API_VERSION)) && \
	  $(PY) tests/schemas/crds/from_crds.py tests/schemas/crds $$dir/manifests/crds/rollout-crd.yaml \
	    $$dir/manifests/crds/analysis-template-crd.yaml \
	    $$gw/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml@v1

# Our own modules: built in place, rebuilt when their source changes.
$(CLUSTER_BIN)/pause: cluster/images/pause/main.go cluster/images/pause/go.mod
	cd cluster/images/pause && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ .

$(CLUSTER_BIN)/git-server: cluster/images/git-server/main.go cluster/images/git-server/go.mod
	cd cluster/images/git-server && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ .

# Argo Rollouts' HTTPRoute traffic router plugin; built against Argo Rollouts, so with its Go toolchain.
$(CLUSTER_BIN)/httproute-plugin: cluster/images/httproute-plugin/main.go cluster/images/httproute-plugin/go.mod \
    cluster/images/httproute-plugin/go.sum
	cd cluster/images/httproute-plugin && GOTOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) GOFLAGS=-mod=mod CGO_ENABLED=0 \
	  nice -n 10 go build -trimpath -ldflags '-s -w' -o $@ .

# --- Images (cluster/images/build.sh skips an image whose inputs did not change) ---------------------
IMAGES_OUT := $(CURDIR)/build/images
BUILD_IMAGE := cluster/images/build.sh
export PYTHON_BASE_IMAGE PYTHON_BASE_SUITE PYTHON_BASE_PACKAGES
# This machine reaches no registry: the server image builds on a Python base made here. Elsewhere
# (GitHub Actions) the Dockerfile's own pinned base is used: LOCAL_BASE=0.
LOCAL_BASE ?= 1
SERVER_IMAGE_REF := $(IMAGES_OUT)/model-server.ref
PAUSE_IMAGE          := localhost/pause:$(PAUSE_VERSION)
COREDNS_IMAGE        := localhost/coredns:$(COREDNS_VERSION)
METRICS_SERVER_IMAGE := localhost/metrics-server:$(METRICS_SERVER_VERSION)
PROMETHEUS_OPERATOR_IMAGE        := localhost/prometheus-operator:$(PROMETHEUS_OPERATOR_VERSION)
PROMETHEUS_CONFIG_RELOADER_IMAGE := localhost/prometheus-config-reloader:$(PROMETHEUS_OPERATOR_VERSION)
# The Operator names the Prometheus image BASE:VERSION.
PROMETHEUS_BASE_IMAGE            := localhost/prometheus
PROMETHEUS_IMAGE                 := $(PROMETHEUS_BASE_IMAGE):$(PROMETHEUS_VERSION)
KUBE_STATE_METRICS_IMAGE         := localhost/kube-state-metrics:$(KUBE_STATE_METRICS_VERSION)
PROMETHEUS_ADAPTER_IMAGE         := localhost/prometheus-adapter:$(PROMETHEUS_ADAPTER_VERSION)
ARGO_ROLLOUTS_IMAGE := localhost/argo-rollouts:$(ARGO_ROLLOUTS_VERSION)
MONITORING_IMAGES := $(PROMETHEUS_OPERATOR_IMAGE) $(PROMETHEUS_CONFIG_RELOADER_IMAGE) $(PROMETHEUS_IMAGE) \
  $(KUBE_STATE_METRICS_IMAGE) $(PROMETHEUS_ADAPTER_IMAGE)
# The GitOps images (cluster/images/argocd/Dockerfile) build on the same Debian base as the server: the
# local one, or the server Dockerfile's pinned registry image with LOCAL_BASE=0.
GITOPS_BASE_IMAGE  := $(if $(filter 1,$(LOCAL_BASE)),$(PYTHON_BASE_IMAGE),$(shell sed -n 's/^ARG PYTHON_IMAGE=//p' service/Dockerfile))
GITOPS_CONTEXT     := $(IMAGES_OUT)/gitops-context
ARGOCD_IMAGE       := localhost/argocd:$(ARGOCD_VERSION)
ARGOCD_REDIS_IMAGE := localhost/argocd-redis:$(ARGOCD_VERSION)
GIT_SERVER_IMAGE   := localhost/git-server:$(shell cat cluster/images/git-server/main.go | sha256sum | cut -c1-12)
GITOPS_IMAGES      := $(ARGOCD_IMAGE) $(ARGOCD_REDIS_IMAGE) $(GIT_SERVER_IMAGE)
GITOPS_BUILD_ARGS  := 'GIT_PACKAGES=$(GITOPS_GIT_PACKAGES)' 'REDIS_PACKAGES=$(GITOPS_REDIS_PACKAGES)'

.PHONY: images image-tools python-base-image server-image cluster-images addon-images gitops-images
image-tools:
	@cluster/apt-install.sh $(if $(filter 1,$(LOCAL_BASE)),$(IMAGE_APT_PACKAGES),)

python-base-image: image-tools
	$(BUILD_IMAGE) python-base

server-image: image-tools $(if $(filter 1,$(LOCAL_BASE)),python-base-image)
	$(if $(filter 1,$(LOCAL_BASE)),PYTHON_IMAGE=$(PYTHON_BASE_IMAGE)) $(BUILD_IMAGE) server $(SERVER_IMAGE_REF)

# The images the cluster itself runs, as archives that cluster/up.sh imports into containerd.
cluster-images: image-tools $(CLUSTER_BIN)/pause $(COREDNS_STAMP)
	$(BUILD_IMAGE) static pause $(PAUSE_VERSION) $(CLUSTER_BIN)/pause
	$(BUILD_IMAGE) static coredns $(COREDNS_VERSION) $(CLUSTER_BIN)/coredns
	@mkdir -p $(IMAGES_OUT)
	$(BUILD_IMAGE) archive $(PAUSE_IMAGE) $(IMAGES_OUT)/pause.tar
	$(BUILD_IMAGE) archive $(COREDNS_IMAGE) $(IMAGES_OUT)/coredns.tar

# The add-ons the e2e suite installs (cluster/addons/). The Operator starts the config reloader as
# /bin/prometheus-config-reloader (and Prometheus from /bin), as upstream's images have them: BIN_DIR.
addon-images: image-tools $(METRICS_SERVER_STAMP) $(MONITORING_STAMPS) $(ARGO_ROLLOUTS_STAMP) $(CLUSTER_BIN)/httproute-plugin
	$(BUILD_IMAGE) static metrics-server $(METRICS_SERVER_VERSION) $(CLUSTER_BIN)/metrics-server
	$(BUILD_IMAGE) static prometheus-operator $(PROMETHEUS_OPERATOR_VERSION) $(CLUSTER_BIN)/operator
	BIN_DIR=/bin $(BUILD_IMAGE) static prometheus-config-reloader $(PROMETHEUS_OPERATOR_VERSION) $(CLUSTER_BIN)/prometheus-config-reloader
	BIN_DIR=/bin $(BUILD_IMAGE) static prometheus $(PROMETHEUS_VERSION) $(CLUSTER_BIN)/prometheus
	$(BUILD_IMAGE) static kube-state-metrics $(KUBE_STATE_METRICS_VERSION) $(CLUSTER_BIN)/kube-state-metrics
	$(BUILD_IMAGE) static prometheus-adapter $(PROMETHEUS_ADAPTER_VERSION) $(CLUSTER_BIN)/adapter
	BIN_DIR=/bin $(BUILD_IMAGE) static argo-rollouts $(ARGO_ROLLOUTS_VERSION) $(CLUSTER_BIN)/rollouts-controller \
	  $(CLUSTER_BIN)/httproute-plugin

# Argo CD's image carries the module's git and gpg wrappers, which its repo server calls by name.
gitops-images: image-tools $(if $(filter 1,$(LOCAL_BASE)),python-base-image) $(ARGOCD_STAMP) $(HELM_STAMP) \
    $(CLUSTER_BIN)/git-server
	rm -rf $(GITOPS_CONTEXT) && mkdir -p $(GITOPS_CONTEXT)
	cp $(CLUSTER_BIN)/argocd $(TOOLS_BIN)/helm $(CLUSTER_BIN)/git-server $(GITOPS_CONTEXT)/
	dir=$$(GOTOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) GOFLAGS=-mod=mod cluster/module-dir.sh $(ARGOCD_MODULE)@$(ARGOCD_VERSION)) && \
	  install -m 0755 $$dir/hack/gpg-wrapper.sh $$dir/hack/git-verify-wrapper.sh $(GITOPS_CONTEXT)/
	BASE_IMAGE=$(GITOPS_BASE_IMAGE) $(BUILD_IMAGE) dockerfile cluster/images/argocd/Dockerfile argocd $(ARGOCD_IMAGE) \
	  $(GITOPS_CONTEXT) $(GITOPS_BUILD_ARGS)
	BASE_IMAGE=$(GITOPS_BASE_IMAGE) $(BUILD_IMAGE) dockerfile cluster/images/argocd/Dockerfile redis $(ARGOCD_REDIS_IMAGE) \
	  $(GITOPS_CONTEXT) $(GITOPS_BUILD_ARGS)
	BASE_IMAGE=$(GITOPS_BASE_IMAGE) $(BUILD_IMAGE) dockerfile cluster/images/argocd/Dockerfile git-server $(GIT_SERVER_IMAGE) \
	  $(GITOPS_CONTEXT) $(GITOPS_BUILD_ARGS)

images: server-image addon-images gitops-images ## build the server image from service/Dockerfile (and the add-on images) with buildah

# --- The cluster ----------------------------------------------------------------------------------
CLUSTER_ENV := CLUSTER_BIN=$(CLUSTER_BIN) KUBERNETES_VERSION=$(KUBERNETES_VERSION) \
  COREDNS_VERSION=$(COREDNS_VERSION) PAUSE_VERSION=$(PAUSE_VERSION)

.PHONY: cluster cluster-down cluster-tools cluster-binaries
cluster-tools:
	@cluster/apt-install.sh $(CLUSTER_APT_PACKAGES)

cluster-binaries: $(KUBERNETES_STAMP) $(KUBECTL_STAMP) $(CRICTL_STAMP)

cluster: cluster-tools cluster-binaries cluster-images ## start a local single-node Kubernetes (root; KUBECONFIG=.cluster/kubeconfig)
	$(CLUSTER_ENV) IMAGE_ARCHIVES="$(IMAGES_OUT)/pause.tar $(IMAGES_OUT)/coredns.tar" cluster/up.sh

cluster-down: ## stop the local cluster and undo its changes to the machine (from any clone)
	$(CLUSTER_ENV) cluster/down.sh

# --- The cluster suite ------------------------------------------------------------------------------
# Against KUBECONFIG when set, else the local cluster's. Tests run in parallel (each in its own
# namespace); E2E_WORKERS=1 runs them one by one.
E2E_KUBECONFIG := $(or $(KUBECONFIG),$(wildcard $(CLUSTER_STATE)/kubeconfig))
# Four: most of the suite's time is waiting (rollouts, rate windows, the kubelet's syncs), not CPU.
E2E_WORKERS ?= 4
E2E_ARGS ?=
# Other fragments add the images their tests run (E2E_IMAGES, with `e2e-load: <their image target>`) and
# the environment that names them to the tests (E2E_ENV).
E2E_IMAGES ?=
E2E_ENV ?=

.PHONY: e2e e2e-preflight e2e-load
e2e-preflight: $(KUBECTL_STAMP)
	@KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) cluster/preflight.sh

# Loaded by what KUBECONFIG points at: this machine's containerd, or kind (cluster/images/load.sh).
e2e-load: e2e-preflight images venv
	KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) cluster/images/load.sh \
	  "$$(cat $(SERVER_IMAGE_REF))" $(METRICS_SERVER_IMAGE) $(MONITORING_IMAGES) $(GITOPS_IMAGES) $(ARGO_ROLLOUTS_IMAGE) $(E2E_IMAGES)
	KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) METRICS_SERVER_IMAGE=$(METRICS_SERVER_IMAGE) \
	  cluster/addons.sh
	@# The three stacks install side by side: each mostly waits for its pods to become ready.
	KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) PY=$(PY) ARGO_ROLLOUTS_MODULE=$(ARGO_ROLLOUTS_MODULE) \
	  ARGO_ROLLOUTS_VERSION=$(ARGO_ROLLOUTS_VERSION) ARGOCD_GO_TOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) \
	  ARGO_ROLLOUTS_IMAGE=$(ARGO_ROLLOUTS_IMAGE) GATEWAY_API_MODULE=$(GATEWAY_API_MODULE) \
	  GATEWAY_API_VERSION=$(GATEWAY_API_VERSION) cluster/addons-rollouts.sh & rollouts=$$!; \
	KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) PY=$(PY) ARGOCD_MODULE=$(ARGOCD_MODULE) \
	  ARGOCD_VERSION=$(ARGOCD_VERSION) ARGOCD_GO_TOOLCHAIN=$(ARGOCD_GO_TOOLCHAIN) ARGOCD_IMAGE=$(ARGOCD_IMAGE) \
	  ARGOCD_REDIS_IMAGE=$(ARGOCD_REDIS_IMAGE) cluster/addons-argocd.sh & argocd=$$!; \
	KUBECONFIG="$(E2E_KUBECONFIG)" CLUSTER_BIN=$(CLUSTER_BIN) PY=$(PY) \
	  PROMETHEUS_OPERATOR_MODULE=$(PROMETHEUS_OPERATOR_MODULE) PROMETHEUS_OPERATOR_VERSION=$(PROMETHEUS_OPERATOR_VERSION) \
	  PROMETHEUS_OPERATOR_IMAGE=$(PROMETHEUS_OPERATOR_IMAGE) PROMETHEUS_CONFIG_RELOADER_IMAGE=$(PROMETHEUS_CONFIG_RELOADER_IMAGE) \
	  PROMETHEUS_BASE_IMAGE=$(PROMETHEUS_BASE_IMAGE) PROMETHEUS_IMAGE=$(PROMETHEUS_IMAGE) PROMETHEUS_VERSION=$(PROMETHEUS_VERSION) \
	  KUBE_STATE_METRICS_IMAGE=$(KUBE_STATE_METRICS_IMAGE) PROMETHEUS_ADAPTER_IMAGE=$(PROMETHEUS_ADAPTER_IMAGE) \
	  cluster/addons-monitoring.sh; monitoring=$$?; \
	wait $$rollouts && wait $$argocd && exit $$monitoring

e2e: venv demo $(HELM_STAMP) e2e-load ## run tests/e2e against KUBECONFIG (default: the local cluster)
	KUBECONFIG="$(E2E_KUBECONFIG)" PATH="$(CLUSTER_BIN):$$PATH" E2E_SERVER_IMAGE="$$(cat $(SERVER_IMAGE_REF))" \
	  E2E_GIT_SERVER_IMAGE=$(GIT_SERVER_IMAGE) \
	  $(E2E_ENV) $(PY) -m pytest tests/e2e -n $(E2E_WORKERS) $(E2E_ARGS)

# Our own Go (the cluster's small images and the traffic-router plugin) is formatted as gofmt writes
# it; part of make lint. (go vet would need each module's dependencies, Argo Rollouts' among them.)
LINT_TARGETS += lint-go
.PHONY: lint-go
lint-go:
	@unformatted=$$("$$(go env GOROOT)/bin/gofmt" -l cluster) || exit 1; \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
