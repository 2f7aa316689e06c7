#!/usr/bin/env bash
# Start the local single-node cluster (`make cluster`, which builds the binaries and images first).
#
# Idempotent: on a running cluster of this clone it checks its health and changes nothing. Leftovers of
# a cluster that is not running any more (a killed session, another clone) are undone first by
# cluster/down.sh, which reads the machine-wide record this script writes. Each step logs to
# .cluster/logs/NN-STEP.log and each daemon to .cluster/logs/NAME.log.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

: "${PAUSE_VERSION:?}" "${KUBERNETES_VERSION:?}" "${COREDNS_VERSION:?}"
IMAGE_ARCHIVES=${IMAGE_ARCHIVES:?space-separated docker archives of the pause and CoreDNS images}

if [[ $(id -u) != 0 ]]; then
  echo "make cluster runs the kubelet, containerd and the network setup as root: run it as root" >&2
  exit 1
fi
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl crictl; do
  [[ -x $BIN/$b ]] || { echo "make cluster: $BIN/$b is missing (run through make)" >&2; exit 1; }
done

running_here() {
  [[ $(recorded_state_dir) == "$STATE_DIR" ]] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do daemon_pid "$c" >/dev/null || return 1; done
}

node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

healthy() {
  kubectl_ get --raw /readyz >/dev/null && node_ready &&
    [[ $(kubectl_ -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}') -ge 1 ]]
}

if running_here; then
  if healthy; then
    echo "the cluster is running (KUBECONFIG=$KUBECONFIG_PATH); nothing to do"
    exit 0
  fi
  echo "the cluster's processes run but it is not healthy: restarting it" >&2
fi
if [[ -d $RECORD_DIR ]] || ip link show "$BRIDGE" >/dev/null 2>&1 || nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then
  other=$(recorded_state_dir || true)
  if [[ -n $other && $other != "$STATE_DIR" ]]; then
    for c in "${COMPONENTS[@]}"; do
      if daemon_pid "$c" >/dev/null; then
        echo "make cluster: a cluster started from ${other%/.cluster} is running; stop it first with" \
          "make cluster-down (from any clone)" >&2
        exit 1
      fi
    done
  fi
  echo "undoing the leftovers of an earlier cluster (${other:-not recorded})"
  "$CLUSTER_DIR/down.sh"
fi

# Last run's logs are kept beside the new ones.
if [[ -d $LOG_DIR ]]; then
  rm -rf "$LOG_DIR.previous"
  mv "$LOG_DIR" "$LOG_DIR.previous"
fi
mkdir -p "$LOG_DIR"
echo "make cluster: Kubernetes $KUBERNETES_VERSION, one node ($NODE_NAME at $NODE_IP); logs in $LOG_DIR"
started=$SECONDS

record() {
  mkdir -p "$RECORD_DIR" "$PID_DIR"
  echo "$STATE_DIR" >"$RECORD_DIR/state_dir"
  local s v
  : >"$RECORD_DIR/sysctl"
  for s in "${SYSCTLS[@]}"; do
    if v=$(sysctl -n "$s" 2>/dev/null); then echo "$s=$v" >>"$RECORD_DIR/sysctl"; fi
  done
  cp "$RECORD_DIR/sysctl" "$STATE_DIR/sysctl.before"
  cat "$RECORD_DIR/sysctl"
  # iptables-nft creates its tables (ip filter, ip6 nat, ...) on first use; those that did not exist
  # before are deleted again by cluster-down once empty.
  nft list tables >"$RECORD_DIR/nft_tables"
  cp "$RECORD_DIR/nft_tables" "$STATE_DIR/nft_tables.before"
  cat "$RECORD_DIR/nft_tables"
}

network() {
  # The guard goes in before anything can send a packet.
  render "$CLUSTER_DIR/config/guard.nft" "$STATE_DIR/guard.nft"
  nft delete table inet "$NFT_TABLE" 2>/dev/null || true
  nft -f "$STATE_DIR/guard.nft"
  if ! ip -4 addr show dev lo | grep -q " $NODE_IP/32 "; then
    ip addr add "$NODE_IP/32" dev lo
    touch "$RECORD_DIR/lo_address"
  fi
  # Routed pod-to-Service traffic, and bridged traffic through kube-proxy's rules.
  sysctl -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
}

configs() {
  render "$CLUSTER_DIR/config/containerd.toml" "$STATE_DIR/containerd/config.toml"
  render "$CLUSTER_DIR/config/cni.conflist" "$STATE_DIR/cni/net.d/10-$CNI_NETWORK.conflist"
  render "$CLUSTER_DIR/config/kubelet.yaml" "$STATE_DIR/kubelet/config.yaml"
  render "$CLUSTER_DIR/config/kube-proxy.yaml" "$STATE_DIR/kube-proxy/config.yaml"
  render "$CLUSTER_DIR/addons/coredns.yaml" "$STATE_DIR/addons/coredns.yaml"
}

etcd_() {
  # Loopback only, plain HTTP: only the apiserver on this host talks to it, and the guard closes its
  # ports to everything but loopback.
  start_daemon etcd /usr/bin/etcd --name "$NODE_NAME" --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --quota-backend-bytes 2147483648 --log-level warn
  wait_for 60 "etcd health" curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

apiserver() {
  local pki=$STATE_DIR/pki
  start_daemon kube-apiserver "$BIN/kube-apiserver" \
    --advertise-address "$NODE_IP" --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  wait_for 120 "the apiserver's /readyz" kubectl_ get --raw /readyz
}

controllers() {
  local pki=$STATE_DIR/pki
  start_daemon kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$pki/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$pki/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
    --cluster-name "$CLUSTER_NAME" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-account-private-key-file "$pki/sa.key" --use-service-account-credentials=true \
    --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
  start_daemon kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$pki/scheduler.kubeconfig" \
    --authentication-kubeconfig "$pki/scheduler.kubeconfig" \
    --authorization-kubeconfig "$pki/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false
  wait_for 60 "the controller manager's /healthz" curl -skf "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
  wait_for 60 "the scheduler's /healthz" curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

containerd_() {
  start_daemon containerd /usr/bin/containerd --config "$STATE_DIR/containerd/config.toml"
  wait_for 60 "containerd's socket" ctr --address "$STATE_DIR/containerd/containerd.sock" version
}

cluster_images() {
  local archive
  for archive in $IMAGE_ARCHIVES; do
    ctr --address "$STATE_DIR/containerd/containerd.sock" -n k8s.io images import "$archive"
  done
  ctr --address "$STATE_DIR/containerd/containerd.sock" -n k8s.io images ls -q
}

kubelet_() {
  # --containerd: the kubelet's cAdvisor looks for containerd at its default socket only; without it
  # the container series (container_cpu_usage_seconds_total{container=...}) carry no container, pod or
  # image labels and the dashboards' capacity rows are empty. The flag is deprecated but still the only
  # way to point cAdvisor elsewhere.
  start_daemon kubelet "$BIN/kubelet" --config "$STATE_DIR/kubelet/config.yaml" \
    --kubeconfig "$STATE_DIR/pki/kubelet.kubeconfig" --root-dir "$STATE_DIR/kubelet/root" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --containerd "$STATE_DIR/containerd/containerd.sock"
  wait_for 120 "node $NODE_NAME to be Ready" node_ready
}

kube_proxy() {
  start_daemon kube-proxy "$BIN/kube-proxy" --config "$STATE_DIR/kube-proxy/config.yaml"
  wait_for 60 "kube-proxy's /healthz" curl -sf "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz"
}

dns() {
  kubectl_ apply --server-side -f "$STATE_DIR/addons/coredns.yaml"
  kubectl_ -n kube-system rollout status deployment/coredns --timeout 180s
}

step record record
step network network
step certificates "$CLUSTER_DIR/certs.sh"
step configs configs
step etcd etcd_
step kube-apiserver apiserver
step controllers controllers
step containerd containerd_
step cluster-images cluster_images
step kubelet kubelet_
step kube-proxy kube_proxy
step coredns dns
echo "cluster ready in $((SECONDS - started))s: export KUBECONFIG=$KUBECONFIG_PATH"
