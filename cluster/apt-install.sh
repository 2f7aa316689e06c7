#!/usr/bin/env bash
# Install Debian packages at exact versions and check them after install.
#
#   cluster/apt-install.sh etcd-server=3.4.23-4+b4 containerd=1.6.20~ds1-1+deb12u3 ...
#
# Packages already at the pinned version are left alone (no apt-get update: a warm machine installs
# nothing). apt needs root: it is root here; elsewhere sudo is used. Services a package would start on a
# systemd machine (etcd, containerd) are stopped and disabled: the cluster runs its own instances.
set -euo pipefail

sudo=
[[ $(id -u) == 0 ]] || sudo=sudo

installed() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | sed -n 's/^ii *//p'; }

missing=()
for spec in "$@"; do
  [[ $(installed "${spec%%=*}") == "${spec#*=}" ]] || missing+=("$spec")
done
((${#missing[@]})) || exit 0

echo "apt-get install ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  $sudo systemctl disable --now etcd containerd >/dev/null 2>&1 || true
fi

for spec in "$@"; do
  got=$(installed "${spec%%=*}")
  if [[ $got != "${spec#*=}" ]]; then
    echo "apt-install: ${spec%%=*} is ${got:-not installed}, pinned ${spec#*=} (mk/tools.mk)" >&2
    exit 1
  fi
done
