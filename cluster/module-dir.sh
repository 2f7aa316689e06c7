#!/usr/bin/env bash
# Where a Go module version lives in the module cache, downloading it first if needed:
#
#   cluster/module-dir.sh MODULE@VERSION          its folder (go mod download's "Dir")
#   cluster/module-dir.sh MODULE@VERSION GoMod    its go.mod file
#
# The caller's environment chooses the toolchain and flags (GOTOOLCHAIN, GOFLAGS) as for any go
# command. A module that cannot be downloaded fails here, with go's own message, instead of handing
# the caller an empty path.
set -euo pipefail
module=${1:?usage: module-dir.sh MODULE@VERSION [Dir|GoMod]}
field=${2:-Dir}
json=$(go mod download -json "$module") || { echo "module-dir.sh: $json" >&2; exit 1; }
value=$(sed -n "s/^[[:space:]]*\"$field\": \"\(.*\)\",\$/\1/p" <<<"$json")
[[ -n $value ]] || { echo "module-dir.sh: go mod download -json $module gave no $field" >&2; exit 1; }
echo "$value"
