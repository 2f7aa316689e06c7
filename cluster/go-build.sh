#!/usr/bin/env bash
# Build static Go binaries from a module at a pinned version, fetched through the Go module proxy only.
#
#   cluster/go-build.sh --name NAME --module MODULE --version VERSION --out DIR --pkg PKG [--pkg PKG ...]
#                       [--ldflags FLAGS] [--tags TAGS] [--nested PATH=MODULE@VERSION ...]
#                       [--wrap [--main DIR] [--staging VERSION]] [--placeholder FILE ...]
#
# Two ways, because `go install MODULE/cmd/x@VERSION` refuses a module whose go.mod has replace
# directives, and fails on modules whose version list the proxy does not serve:
#   copy (default)  download MODULE@VERSION, copy it to .tools/src/NAME-VERSION, put any --nested
#                   module where the copied go.mod's local replace expects it, and `go build` the
#                   packages (paths relative to the module, e.g. ./cmd/metrics-server) with its own go.sum.
#   --wrap          a scratch module at .tools/src/NAME-VERSION that requires MODULE@VERSION: for
#                   k8s.io/kubernetes, whose go.mod replaces its staging modules (k8s.io/api, client-go,
#                   ...) with local folders absent from the module zip, --staging maps each of them to
#                   the published module at that version; --main copies a main package of ours (CoreDNS
#                   with only the plugins the cluster uses). Packages are import paths (or `.`).
# --placeholder writes FILE (relative to the copied module) with a line saying it was left out: for files a
# module embeds but its zip does not carry (Argo Rollouts' dashboard, built by npm in its own release).
# Binaries are static (CGO_ENABLED=0) and built with -trimpath; the Go build and module caches are the
# machine's, so a second build of the same version takes seconds. The binaries themselves are kept in a
# machine-wide cache too (GO_BINARY_CACHE, default ~/.cache/model-server/go-binaries), keyed by every
# input of the build: another clone (CI's) copies them instead of copying the module's source and
# linking again, which is most of a warm `make e2e`'s set-up. `rm -rf` it to rebuild everything.
set -euo pipefail
args=("$@")

name='' module='' version='' out='' ldflags='' tags='' wrap='' main='' staging=''
pkgs=() nested=() placeholders=()
while (($#)); do
  case $1 in
    --name) name=$2; shift 2 ;;
    --module) module=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --pkg) pkgs+=("$2"); shift 2 ;;
    --ldflags) ldflags=$2; shift 2 ;;
    --tags) tags=$2; shift 2 ;;
    --nested) nested+=("$2"); shift 2 ;;
    --wrap) wrap=1; shift ;;
    --main) main=$2; shift 2 ;;
    --staging) staging=$2; shift 2 ;;
    --placeholder) placeholders+=("$2"); shift 2 ;;
    *) echo "go-build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z $name || -z $module || -z $version || -z $out || ${#pkgs[@]} -eq 0 ]]; then
  echo "usage: go-build.sh --name NAME --module MODULE --version VERSION --out DIR --pkg PKG ..." >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/.tools/src/$name-$version
export CGO_ENABLED=0 GOWORK=off

# The cache key: the arguments but the paths into this clone (--out, --main), the Go that builds
# (GOTOOLCHAIN picks it), this script, and the sources of a --main.
key=$(
  {
    skip=''
    for a in "${args[@]}"; do
      if [[ -n $skip ]]; then skip=''; continue; fi
      if [[ $a == --out || $a == --main ]]; then skip=1; continue; fi  # paths into this clone
      printf '%s\n' "$a"
    done
    go env GOVERSION GOOS GOARCH
    cat "$0"
    if [[ -n $main ]]; then cat "$main"/*.go; fi
  } | sha256sum | cut -c1-32
)
cache=${GO_BINARY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-server/go-binaries}/$name-$version-$key
mkdir -p "$out"
if [[ -d $cache ]]; then
  cp -p "$cache"/* "$out/"
  echo "go-build.sh: $name $version from the binary cache ($cache)"
  exit 0
fi

# The module's folder, or its go.mod, in the module cache (downloading it if needed).
module_dir() {
  "$repo/cluster/module-dir.sh" "$@"  # from $repo: the wrapped build calls it from its scratch module
}

rm -rf "$src"
mkdir -p "$(dirname "$src")" "$out"
if [[ -z $wrap ]]; then
  dir=$(module_dir "$module@$version")
  [[ -n $dir ]] || { echo "go-build.sh: the proxy does not serve $module@$version" >&2; exit 1; }
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  for n in "${nested[@]}"; do
    path=${n%%=*} mv=${n#*=}
    rm -rf "${src:?}/$path"
    mkdir -p "$(dirname "$src/$path")"
    cp -r "$(module_dir "$mv")" "$src/$path"
    chmod -R u+w "$src/$path"
  done
  for f in "${placeholders[@]}"; do
    mkdir -p "$(dirname "$src/$f")"
    echo "left out of this build (cluster/go-build.sh --placeholder)" >"$src/$f"
  done
  cd "$src"
else
  mkdir -p "$src"
  cd "$src"
  if [[ -n $main ]]; then
    cp "$main"/*.go "$src/"
  fi
  go mod init "local.build/$name" >/dev/null 2>&1
  if [[ -n $staging ]]; then
    # Every `k8s.io/x => ./staging/src/k8s.io/x` of the wrapped module's go.mod, as a published module.
    gomod=$(module_dir "$module@$version" GoMod)
    replaces=$(sed -n 's#^[[:space:]]*\([^[:space:]]*\) => \./staging/src/[^[:space:]]*$#\1#p' "$gomod")
    [[ -n $replaces ]] || { echo "go-build.sh: no staging replaces in $gomod" >&2; exit 1; }
    for m in $replaces; do
      go mod edit -replace "$m=$m@$staging"
    done
  fi
  go mod edit -require "$module@$version"
  if [[ -n $main ]]; then
    go mod tidy
  else
    go get "${pkgs[@]/%/@$version}"
  fi
fi
# Built beside the cache entry, then renamed into place: the entry is whole or absent (a build of the
# same key elsewhere may have won the race: then this one goes).
mkdir -p "$(dirname "$cache")"
staged=$(mktemp -d -p "$(dirname "$cache")")
go build -trimpath -mod=mod ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" -o "$staged/" "${pkgs[@]}"
cp -p "$staged"/* "$out/"
mv -T "$staged" "$cache" 2>/dev/null || rm -rf "$staged"
cd "$repo"
rm -rf "$src"
