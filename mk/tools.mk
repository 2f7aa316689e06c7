# Pinned tool versions: the one place they are written down (CI caches key on this file).
HELM_VERSION          := v3.22.0
# The Kubernetes version `helm template` assumes without a cluster: what helm's release build stamps
# in from its client-go (v0.37 -> 1.37). A plain `go install` would leave helm's fallback, 1.20.
HELM_DEFAULT_KUBE     := 1.37
HELM_UNITTEST_VERSION := v1.1.2
KUBECONFORM_VERSION   := v0.8.0
ACTIONLINT_VERSION    := v1.7.12
KUBE_SCORE_VERSION    := v1.20.0
# Storage emulators the model-source tests start on loopback (tests/integration/storage): SeaweedFS's
# S3 gateway and fake-gcs-server built from their Go modules, Microsoft's Azurite from npm.
SEAWEEDFS_VERSION     := v0.0.0-20261109003541-7506e5f91cd6
FAKE_GCS_VERSION      := v1.56.1
AZURITE_VERSION       := 3.37.0
# Generates the charts' values tables (README.md) from the `# --` comments in values.yaml.
HELM_DOCS_VERSION     := v1.14.2
# gRPC clients: grpcurl (the tests call the server through its reflection) and ghz (make bench's gRPC
# load generator), built from their Go modules.
GRPCURL_VERSION       := v1.9.4
GHZ_VERSION           := v0.93.0
# make bench-overload's open-loop HTTP load generator (requests sent on schedule whatever the server
# does, at tens of thousands a second from one core), built from its module.
VEGETA_VERSION        := v12.13.0
# Debian (bookworm) packages: promtool (in Debian's prometheus package) for the rule tests, wrk for make bench,
# Chromium and its WebDriver for the browser test of /docs (Debian builds them in matching versions).
APT_PACKAGES          := prometheus wrk chromium chromium-driver
# The commands those packages provide: apt-tools installs the packages when one of these is missing.
APT_COMMANDS          := promtool wrk chromium chromedriver

# The local cluster (mk/cluster.mk, docs/development/cluster.md). Kubernetes is built from the Go module
# k8s.io/kubernetes; its staging modules (k8s.io/api, client-go, ...) carry the same release as v0.X.Y.
KUBERNETES_VERSION     := v1.34.4
COREDNS_VERSION        := v1.14.7
METRICS_SERVER_VERSION := v0.8.0
# The monitoring stack the e2e suite installs (cluster/addons/monitoring/). The Operator's CRDs come from
# the same module version (its example/prometheus-operator-crd/); v0.85.0 is the one the proxy serves
# here. Prometheus's Go module numbers 3.16.0 as v0.316.0; Debian's 2.42 is below the Operator's
# minimum (2.45).
PROMETHEUS_OPERATOR_VERSION   := v0.85.0
PROMETHEUS_VERSION            := v3.16.0
PROMETHEUS_MODULE_VERSION     := v0.316.0
KUBE_STATE_METRICS_VERSION    := v2.16.0
PROMETHEUS_ADAPTER_VERSION    := v0.12.0
# GitOps on the local cluster (tests/e2e/test_gitops.py): Argo CD's components are one binary built
# from its Go module; its install manifests and CRDs come from the same module version
# (manifests/core-install.yaml). v3.6.2 needs Go 1.27, fetched as a toolchain module. Its repo server
# runs the project's helm (HELM_VERSION above).
ARGOCD_VERSION         := v3.6.2
ARGOCD_GO_TOOLCHAIN    := go1.27.3
# Argo Rollouts (controller and kubectl plugin) needs Go >= 1.26.10, as Argo CD does.
ARGO_ROLLOUTS_VERSION  := v1.10.2
# The Gateway API CRDs (standard channel) the local cluster installs beside Argo Rollouts, from their Go
# module, for the chart's HTTPRoute canary split (rollout.canary.gatewayAPI); no Gateway controller runs.
GATEWAY_API_VERSION    := v1.6.3
# Debian (bookworm) packages of the GitOps images (cluster/images/argocd): git and tini for Argo CD's
# repo server and the in-cluster Git server, and Redis, Argo CD's cache.
GITOPS_GIT_PACKAGES    := git=1:2.39.5-0+deb12u3 tini=0.19.0-1+b3
GITOPS_REDIS_PACKAGES  := redis-server=5:7.0.15-1~deb12u10
CRI_TOOLS_VERSION      := v1.34.0
# The pod sandbox ("pause") image is our own static Go program (cluster/images/pause); its tag is the
# version of that program, bumped when cluster/images/pause changes.
PAUSE_VERSION          := 1.0.0
# Exact Debian (bookworm) versions: the cluster's runtime pieces, and the image builder. They are
# installed by `make cluster` / `make images` and checked after install; a version Debian no longer
# serves fails the install, naming the pin to bump.
RUNC_APT_PACKAGE       := runc=1.1.5+ds1-1+deb12u1
CLUSTER_APT_PACKAGES   := etcd-server=3.4.23-4+b4 containerd=1.6.20~ds1-1+deb12u3 $(RUNC_APT_PACKAGE) \
                          containernetworking-plugins=1.1.1+ds1-3+b5 iptables=1.8.9-2 nftables=1.0.6-2+deb12u2
# buildah only recommends an OCI runtime, and recommends are not installed: without runc every RUN step
# of service/Dockerfile fails ("exec: no command") on a machine that never ran `make cluster`.
IMAGE_APT_PACKAGES     := buildah=1.28.2+ds1-3+deb12u1+b3 debootstrap=1.0.128+nmu2+deb12u2 $(RUNC_APT_PACKAGE)
# What the locally built Python base image holds (debootstrap --variant=minbase bookworm, plus these):
# the interpreter service/Dockerfile builds on. Versions are bookworm's current ones at build time.
PYTHON_BASE_SUITE      := bookworm
PYTHON_BASE_PACKAGES   := python3 python3-venv python-is-python3 ca-certificates passwd
PYTHON_BASE_IMAGE      := localhost/python-base:3.11-bookworm

TOOLS_DIR := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin
STAMPS    := $(TOOLS_DIR)/stamps
# Helm reads plugins from HELM_PLUGINS; we write the plugin folder ourselves instead of running
# `helm plugin install`, whose hook downloads a release binary from GitHub.
export HELM_PLUGINS     := $(TOOLS_DIR)/helm/plugins
export HELM_CACHE_HOME  := $(TOOLS_DIR)/helm/cache
export HELM_CONFIG_HOME := $(TOOLS_DIR)/helm/config
export HELM_DATA_HOME   := $(TOOLS_DIR)/helm/data
export PATH := $(TOOLS_BIN):$(PATH)
UNITTEST_DIR := $(HELM_PLUGINS)/unittest

EMPTY :=
SPACE := $(EMPTY) $(EMPTY)
# A stamp names the version, so bumping a pin above rebuilds that tool and nothing else.
# Other fragments depend on these names, never on the stamp paths.
HELM_STAMP        := $(STAMPS)/helm-$(HELM_VERSION)-kube$(HELM_DEFAULT_KUBE)
KUBECONFORM_STAMP := $(STAMPS)/kubeconform-$(KUBECONFORM_VERSION)
ACTIONLINT_STAMP  := $(STAMPS)/actionlint-$(ACTIONLINT_VERSION)
KUBE_SCORE_STAMP  := $(STAMPS)/kube-score-$(KUBE_SCORE_VERSION)
UNITTEST_STAMP    := $(STAMPS)/unittest-$(HELM_UNITTEST_VERSION)
SEAWEEDFS_STAMP   := $(STAMPS)/seaweedfs-$(SEAWEEDFS_VERSION)
FAKE_GCS_STAMP    := $(STAMPS)/fake-gcs-server-$(FAKE_GCS_VERSION)
AZURITE_STAMP     := $(STAMPS)/azurite-$(AZURITE_VERSION)
STORAGE_STAMPS    := $(SEAWEEDFS_STAMP) $(FAKE_GCS_STAMP) $(AZURITE_STAMP)
HELM_DOCS_STAMP   := $(STAMPS)/helm-docs-$(HELM_DOCS_VERSION)
GRPCURL_STAMP     := $(STAMPS)/grpcurl-$(GRPCURL_VERSION)
GHZ_STAMP         := $(STAMPS)/ghz-$(GHZ_VERSION)
VEGETA_STAMP      := $(STAMPS)/vegeta-$(VEGETA_VERSION)
TOOL_STAMPS := $(HELM_STAMP) $(KUBECONFORM_STAMP) $(ACTIONLINT_STAMP) $(KUBE_SCORE_STAMP) $(UNITTEST_STAMP) \
  $(HELM_DOCS_STAMP) $(GRPCURL_STAMP) $(STORAGE_STAMPS)
GO_INSTALL = CGO_ENABLED=0 GOFLAGS=-trimpath go install
GO_BUILD   = CGO_ENABLED=0 GOFLAGS=-trimpath go build

.PHONY: tools
tools: $(TOOL_STAMPS) apt-tools ## install every pinned tool into .tools/ (idempotent, no downloads from GitHub)

HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach p,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(p).k8sVersionMajor=$(word 1,$(subst ., ,$(HELM_DEFAULT_KUBE))) \
  -X helm.sh/helm/v3/$(p).k8sVersionMinor=$(word 2,$(subst ., ,$(HELM_DEFAULT_KUBE))))
$(HELM_STAMP):
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/kubeconform-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/yannh/kubeconform/cmd/kubeconform@$*
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/actionlint-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/rhysd/actionlint/cmd/actionlint@$*
	@mkdir -p $(STAMPS) && touch $@

# Policy scan of rendered manifests (kube-linter's module is not served by the Go proxy here).
$(STAMPS)/kube-score-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/zegl/kube-score/cmd/kube-score@$*
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/grpcurl-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/fullstorydev/grpcurl/cmd/grpcurl@$*
	@mkdir -p $(STAMPS) && touch $@

# Only make bench needs it (not part of `tools`).
$(STAMPS)/ghz-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/bojand/ghz/cmd/ghz@$*
	@mkdir -p $(STAMPS) && touch $@

# Only make bench-overload needs it (not part of `tools`).
$(STAMPS)/vegeta-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/tsenart/vegeta/v12@$*
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/helm-docs-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/norwoodj/helm-docs/cmd/helm-docs@$*
	@mkdir -p $(STAMPS) && touch $@

# The plugin is just its folder: plugin.yaml plus the binary it names. helm-unittest's go.mod has a
# replace directive, which `go install pkg@version` refuses, so build inside the downloaded module.
$(STAMPS)/unittest-%:
	rm -rf $(UNITTEST_DIR) $(TOOLS_DIR)/src/helm-unittest && mkdir -p $(UNITTEST_DIR) $(TOOLS_DIR)/src
	cp -r "$$(cluster/module-dir.sh github.com/helm-unittest/helm-unittest@$*)" \
	  $(TOOLS_DIR)/src/helm-unittest && chmod -R u+w $(TOOLS_DIR)/src/helm-unittest
	cd $(TOOLS_DIR)/src/helm-unittest && $(GO_BUILD) -o $(UNITTEST_DIR)/untt ./cmd/helm-unittest
	printf '%s\n' 'name: "unittest"' 'version: "$(patsubst v%,%,$*)"' \
	  'usage: "unit test helm charts in YAML"' 'description: "helm-unittest, built by make tools"' \
	  'ignoreFlags: false' 'command: "$$HELM_PLUGIN_DIR/untt"' > $(UNITTEST_DIR)/plugin.yaml
	rm -rf $(TOOLS_DIR)/src/helm-unittest
	@mkdir -p $(STAMPS) && touch $@

# SeaweedFS's go.mod has a replace directive, so it is built inside a copy of the downloaded module
# (like helm-unittest above); a cold build takes some 4 minutes on 2 cores.
$(STAMPS)/seaweedfs-%:
	rm -rf $(TOOLS_DIR)/src/seaweedfs && mkdir -p $(TOOLS_BIN) $(TOOLS_DIR)/src
	cp -r "$$(cluster/module-dir.sh github.com/seaweedfs/seaweedfs@$*)" \
	  $(TOOLS_DIR)/src/seaweedfs && chmod -R u+w $(TOOLS_DIR)/src/seaweedfs
	cd $(TOOLS_DIR)/src/seaweedfs && GOWORK=off $(GO_BUILD) -o $(TOOLS_BIN)/weed ./weed
	rm -rf $(TOOLS_DIR)/src/seaweedfs
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/fake-gcs-server-%:
	GOBIN=$(TOOLS_BIN) $(GO_INSTALL) github.com/fsouza/fake-gcs-server@$*
	@mkdir -p $(STAMPS) && touch $@

# Azurite's blob service only (azurite-blob); npm puts it in an ignored folder, linked into .tools/bin.
$(STAMPS)/azurite-%:
	rm -rf $(TOOLS_DIR)/npm/azurite && mkdir -p $(TOOLS_BIN) $(TOOLS_DIR)/npm/azurite
	npm install --prefix $(TOOLS_DIR)/npm/azurite --no-audit --no-fund --no-save --loglevel=error azurite@$*
	ln -sf ../npm/azurite/node_modules/.bin/azurite-blob $(TOOLS_BIN)/azurite-blob
	@mkdir -p $(STAMPS) && touch $@

# apt needs root: it is root here; GitHub runners have passwordless sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# No stamp here: a stamp restored from a CI cache would skip the install on a fresh runner, and
# checking a few commands costs nothing. Debian starts a system Prometheus on :9090 at install;
# the tests run their own on free ports, so it is switched off.
.PHONY: apt-tools
apt-tools:
	@if ! (for c in $(APT_COMMANDS); do command -v $$c >/dev/null || exit 1; done); then \
	  echo "apt-get install $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  $(SUDO) systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true; \
	fi
