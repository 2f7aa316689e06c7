#!/usr/bin/env bash
# Stop the local cluster and undo every change it made to the machine (`make cluster-down`).
#
# Works from any clone and on a cluster whose processes were already killed: what to undo comes from
# the machine-wide record written by cluster/up.sh (the cluster's state directory, its PIDs, the sysctl
# values before bring-up); pieces that carry the cluster's names (its bridge, nftables table, KUBE-* and
# CNI-* chains, node address on lo, mounts under its state directory) are removed even without a record.
# Processes are stopped by recorded PID only. Kept for the next `make cluster`: certificates, images
# (containerd's content store) and the last run's logs; cleared: etcd's data, the kubelet's and
# containerd's runtime state, the kubeconfig.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"
STEP_OWNER="make cluster-down"

if [[ $(id -u) != 0 ]]; then
  echo "make cluster-down undoes network and mount changes as root: run it as root" >&2
  exit 1
fi
state=$(recorded_state_dir || echo "$STATE_DIR")
sock=$state/containerd/containerd.sock
mkdir -p "$LOG_DIR"
LOG_DIR=$LOG_DIR/down
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"
started=$SECONDS
echo "make cluster-down: the cluster of $state; logs in $LOG_DIR"

# Pods first, while containerd still runs: removing their sandboxes through the CRI runs the CNI's DEL
# (veth, IP) and unmounts their network namespaces, as a kubelet would.
pods() {
  stop_daemon kubelet 30
  if daemon_pid containerd >/dev/null && [[ -S $sock ]]; then
    local pods
    mapfile -t pods < <("$BIN/crictl" --runtime-endpoint "unix://$sock" pods -q)
    ((${#pods[@]} == 0)) || "$BIN/crictl" --runtime-endpoint "unix://$sock" --timeout 60s stopp "${pods[@]}" || true
    "$BIN/crictl" --runtime-endpoint "unix://$sock" --timeout 60s rmp --all --force
  fi
}

processes() {
  stop_daemon kube-proxy
  # kube-proxy's own cleanup of the rules it wrote (the sweep below catches any it missed).
  if [[ -x $BIN/kube-proxy ]]; then "$BIN/kube-proxy" --cleanup --v=0 || true; fi
  local c
  for c in containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$c"; done
  # A containerd killed with its pods leaves their shims and containers: they are found by the paths
  # of this cluster's own runc root and socket.
  local root=$state/containerd/runc/k8s.io id pid
  if [[ -d $root ]]; then
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" && echo "removed container $id"
    done
  fi
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock( |$)" || true); do
    kill -KILL "$pid" && echo "killed shim $pid"
  done
}

mounts() {
  # Deepest first; netns mounts are under the state directory too (containerd.toml says so).
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m"
    echo "unmounted $m"
  done < <(awk '{print $5}' /proc/self/mountinfo | grep -F "$state/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
}

# Remove every rule jumping to a chain called PREFIX* and those chains, in every table, v4 and v6.
sweep_chains() {
  local cmd table line chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      "$cmd-save" -t "$table" >/dev/null 2>&1 || continue
      while read -r line; do
        # shellcheck disable=SC2086 # the rule's own words
        eval "$cmd -t $table -D ${line#-A }" && echo "$cmd -t $table: removed ${line#-A }"
      done < <("$cmd-save" -t "$table" | grep -E '^-A [A-Z]+ .*-j (KUBE|CNI)-' | grep -Ev '^-A (KUBE|CNI)-')
      for chain in $("$cmd-save" -t "$table" | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
        "$cmd" -t "$table" -F "$chain"
      done
      for chain in $("$cmd-save" -t "$table" | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
        "$cmd" -t "$table" -X "$chain" && echo "$cmd -t $table: deleted chain $chain"
      done
    done
  done
}

network() {
  sweep_chains
  if nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then
    nft delete table inet "$NFT_TABLE" && echo "deleted nftables table inet $NFT_TABLE"
  fi
  # The iptables-nft tables that appeared with the cluster, once nothing is left in them.
  local table rules words
  if [[ -f $RECORD_DIR/nft_tables ]]; then
    while read -r table; do
      grep -qxF "$table" "$RECORD_DIR/nft_tables" && continue
      [[ $table =~ ^table\ (ip|ip6)\ [a-z]+$ ]] || continue
      read -ra words <<<"$table" # table FAMILY NAME
      rules=$(nft list "${words[@]}")
      if ! grep -qvE '^\s*(table |chain |type |\}|$)' <<<"$rules"; then
        nft delete "${words[@]}" && echo "deleted the empty $table iptables created"
      fi
    done < <(nft list tables)
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" && echo "deleted bridge $BRIDGE"
  fi
  # Network namespaces of pods whose sandbox outlived containerd, recognised by an address in the pod
  # range (older runs mounted them under /run/netns).
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
    if ip -n "$ns" -4 addr 2>/dev/null | grep -q "inet ${POD_CIDR%.*}\."; then
      ip netns delete "$ns" && echo "deleted netns $ns"
    fi
  done
  if ip -4 addr show dev lo | grep -q " $NODE_IP/32 "; then
    ip addr del "$NODE_IP/32" dev lo && echo "removed $NODE_IP/32 from lo"
  fi
  rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
}

sysctls() {
  local line
  if [[ -f $RECORD_DIR/sysctl ]]; then
    while IFS= read -r line; do
      sysctl -w "${line%%=*}=${line#*=}"
    done <"$RECORD_DIR/sysctl"
  else
    echo "no record of the sysctls before bring-up: left as they are"
  fi
}

# The kubelet's cgroups (cgroup v1: one tree per controller), emptied by the container removal above.
cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $d ]] && echo "could not remove $d (still in use)" || echo "removed $d"
  done
}

state_files() {
  # Never delete through a mount that is still there (a hostPath subPath bind would take host files).
  if grep -qF " $state/" /proc/self/mountinfo; then
    echo "mounts remain under $state: not deleting its runtime state"
    grep -F " $state/" /proc/self/mountinfo
    return 1
  fi
  # The admin kubeconfig too: with no cluster holding the node address, a request to it would be routed
  # off the machine. `make cluster` writes it again.
  rm -rf "$state/etcd" "$state/kubelet/root" "$state/pod-logs" "$state/cni/ipam" "$state/containerd/state" \
    "$state/containerd/runc" "$state/kubeconfig"
  rm -rf "$RECORD_DIR"
}

# Nothing of the cluster may be left: processes, mounts, interfaces, addresses, rules, changed sysctls.
leftovers() {
  local found=0 line want got
  report() { echo "LEFT BEHIND: $*"; found=1; }
  for line in $(pgrep -f -- "$state/|$BIN/" || true); do
    [[ $line == "$$" || $line == "$BASHPID" ]] || report "process $line: $(tr '\0' ' ' <"/proc/$line/cmdline" 2>/dev/null)"
  done
  while read -r line; do
    [[ -z $line ]] || report "mount $line"
  done <<<"$(grep -F " $state/" /proc/self/mountinfo || true)"
  ip link show "$BRIDGE" >/dev/null 2>&1 && report "interface $BRIDGE"
  ip -4 addr show dev lo | grep -q " $NODE_IP/32 " && report "address $NODE_IP on lo"
  nft list table inet "$NFT_TABLE" >/dev/null 2>&1 && report "nftables table inet $NFT_TABLE"
  for cmd in iptables-save ip6tables-save; do
    command -v "$cmd" >/dev/null || continue
    got=$("$cmd" 2>/dev/null | grep -cE '(KUBE|CNI)-' || true)
    [[ $got == 0 ]] || report "$got $cmd lines naming KUBE-/CNI- chains"
  done
  if [[ -f $state/sysctl.before ]]; then
    while IFS= read -r line; do
      want=${line#*=} got=$(sysctl -n "${line%%=*}" 2>/dev/null || true)
      [[ $got == "$want" ]] || report "sysctl ${line%%=*} is $got, was $want before the cluster"
    done <"$state/sysctl.before"
  fi
  if [[ -f $state/nft_tables.before ]]; then
    while read -r line; do
      grep -qxF "$line" "$state/nft_tables.before" || report "nftables $line"
    done < <(nft list tables)
  fi
  [[ ! -e $RECORD_DIR ]] || report "record $RECORD_DIR"
  ((found == 0)) && echo "nothing of the cluster is left on the machine"
  return "$found"
}

step pods pods
step processes processes
step mounts mounts
step network network
step sysctls sysctls
step cgroups cgroups
step state-files state_files
step leftovers leftovers
echo "cluster down in $((SECONDS - started))s"
