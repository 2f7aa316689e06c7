# shellcheck shell=bash disable=SC2034 # every variable here is for the scripts that source this file
# The local cluster's settings: names, addresses and ports in one place, sourced by every script in
# cluster/. Versions are not here: they are pinned in mk/tools.mk and passed in by mk/cluster.mk.
#
# Everything the cluster creates on the machine carries one of these names, which is how `make cluster`
# recognises a previous run's leftovers (from any clone) and how `make cluster-down` finds what to undo.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=$REPO/cluster
# This clone's cluster state: data, certificates, logs, kubeconfig. Git-ignored.
STATE_DIR=${CLUSTER_STATE_DIR:-$REPO/.cluster}
KUBECONFIG_PATH=$STATE_DIR/kubeconfig
LOG_DIR=$STATE_DIR/logs
# Machine-wide record of a running cluster (which clone, which PIDs, the sysctl values before bring-up):
# whichever clone runs `make cluster-down` or the next `make cluster` reads it, so a cluster started from
# another directory, or left behind by a killed session, is still stopped and undone.
RECORD_DIR=/var/lib/model-server-cluster

CLUSTER_NAME=model-server-local
NODE_NAME=model-server-node
# The node's address, on `lo` as a /32 outside 127/8: the kernel here has no `dummy` interface, and an
# address on the uplink would expose the cluster. Everything the control plane serves binds to it or to
# 127.0.0.1.
NODE_IP=10.245.0.1
# One /24 of pod addresses on one bridge (254 pods: plenty for one node). Kubernetes' usual defaults.
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
BRIDGE=mscluster0
CNI_NETWORK=model-server-pods
NFT_TABLE=model_server_cluster

APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
KUBE_PROXY_HEALTHZ_PORT=10256
KUBE_PROXY_METRICS_PORT=10249
CONTROLLER_MANAGER_PORT=10257
SCHEDULER_PORT=10259
# Every TCP port a cluster component listens on: the guard closes them on every interface but lo and the
# pod bridge, whatever address they bound.
CLUSTER_PORTS="$APISERVER_PORT, $ETCD_CLIENT_PORT, $ETCD_PEER_PORT, $KUBELET_PORT, $KUBELET_HEALTHZ_PORT, \
$KUBE_PROXY_HEALTHZ_PORT, $KUBE_PROXY_METRICS_PORT, $CONTROLLER_MANAGER_PORT, $SCHEDULER_PORT, 30000-32767"

# Sysctls the bring-up or its components (the kubelet, kube-proxy, the CNI bridge plugin) may change;
# their values are recorded before bring-up and written back by cluster-down, in this order: the kernel
# resets net.ipv4.conf.all.accept_redirects whenever ip_forward is written, so it comes after.
SYSCTLS=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.accept_redirects
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
)

# The processes, in start order (cluster-down stops them in reverse).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
