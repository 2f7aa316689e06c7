#!/usr/bin/env bash
# Build the images the cluster runs, with buildah (no registry is reachable here: every image is built
# on this machine, the base of the server image included).
#
#   cluster/images/build.sh static NAME TAG BINARY...   FROM scratch + static binaries -> localhost/NAME:TAG
#                                                        (in /usr/local/bin, or BIN_DIR: the Prometheus
#                                                        Operator runs /bin/prometheus-config-reloader)
#   cluster/images/build.sh python-base                  debootstrap'd Python -> $PYTHON_BASE_IMAGE
#   cluster/images/build.sh server OUT_FILE              service/Dockerfile itself -> writes the image ref
#   cluster/images/build.sh dockerfile FILE TARGET IMAGE CONTEXT [ARG=VALUE...]
#                                                        one stage of a Dockerfile on $PYTHON_BASE_IMAGE
#                                                        (or BASE_IMAGE): the GitOps images
#                                                        (cluster/images/argocd)
#   cluster/images/build.sh archive IMAGE OUT.tar        docker-archive of a built image, for loading
#
# Each image carries a label with the hash of its inputs; a build whose inputs did not change is
# skipped, so a warm `make images` takes seconds. buildah keeps its images and layer cache in its own
# machine-wide store (like Go's build cache), so another clone of the repository, CI's included, reuses
# them; its RUN steps use the host's network (no bridge, no NAT rules), and nothing from the host is
# baked into an image: the CA bundle pip needs reaches the build as a secret (see service/Dockerfile).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
sudo=
[[ $(id -u) == 0 ]] || sudo=sudo
BUILDAH=$(command -v buildah) || { echo "build.sh: buildah is not installed (make image-tools)" >&2; exit 1; }
buildah() { $sudo "$BUILDAH" "$@"; }
INPUTS_LABEL=io.model-server.build-inputs

# The label of an existing image, empty when the image is absent.
built_inputs() {
  buildah inspect --type image --format "{{index .ImageAnnotations \"$INPUTS_LABEL\"}}{{index .OCIv1.Config.Labels \"$INPUTS_LABEL\"}}" "$1" 2>/dev/null || true
}

static() {
  local name=$1 tag=$2
  shift 2
  local image=localhost/$name:$tag inputs ctr dir=${BIN_DIR:-/usr/local/bin}
  inputs=$({ echo "$dir"; cat "$@"; } | sha256sum | cut -c1-32)
  if [[ $(built_inputs "$image") == "$inputs" ]]; then
    echo "$image is up to date"
    return
  fi
  ctr=$(buildah from scratch)
  for bin in "$@"; do
    buildah copy --chmod 0755 "$ctr" "$bin" "$dir/$(basename "$bin")" >/dev/null
  done
  # 65532: the conventional "nonroot" UID of distroless images; the pods' securityContext sets it too.
  buildah config --entrypoint "[\"$dir/$(basename "$1")\"]" --cmd '' --user 65532:65532 \
    --workingdir / --label "$INPUTS_LABEL=$inputs" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  echo "built $image"
}

python_base() {
  local image=${PYTHON_BASE_IMAGE:?} suite=${PYTHON_BASE_SUITE:?} packages=${PYTHON_BASE_PACKAGES:?}
  # Bump the recipe number when this function changes what it builds.
  local inputs
  inputs=$(echo "recipe 1 $suite $packages" | sha256sum | cut -c1-32)
  if [[ $(built_inputs "$image") == "$inputs" ]]; then
    echo "$image is up to date"
    return
  fi
  local work=$repo/.tools/python-base
  $sudo rm -rf "$work"
  mkdir -p "$work"
  trap '$sudo rm -rf "$work"' RETURN
  # minbase: dpkg, apt and the Essential packages, then the interpreter. Security updates come from
  # bookworm-security, which debootstrap does not read, hence the upgrade in the new root.
  $sudo debootstrap --variant=minbase --include="${packages// /,}" "$suite" "$work/root" http://deb.debian.org/debian
  $sudo tee "$work/root/etc/apt/sources.list" >/dev/null <<EOF
deb http://deb.debian.org/debian $suite main
deb http://deb.debian.org/debian $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
  $sudo cp /etc/resolv.conf "$work/root/etc/resolv.conf"
  $sudo chroot "$work/root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >/dev/null'
  $sudo chroot "$work/root" apt-get clean
  $sudo rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/etc/resolv.conf" "$work/root/var/log/"* \
    "$work/root/var/cache/debconf/"*-old
  $sudo tar --numeric-owner --xattrs -C "$work/root" -cf "$work/root.tar" .
  local ctr
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$work/root.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd '["python3"]' --label "$INPUTS_LABEL=$inputs" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  echo "built $image ($($sudo chroot "$work/root" python3 --version))"
}

# The image from service/Dockerfile, unchanged: only its base differs (PYTHON_IMAGE). The tag is the
# package version plus a hash of everything the build reads, so a change to the server gives a new tag
# (and a rollout when installed), and an unchanged tree reuses the image.
server() {
  local ref_file=$1 base=${PYTHON_IMAGE:-} version inputs tag base_id=
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/service/pyproject.toml")
  [[ -z $base ]] || base_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$base")
  inputs=$(cd "$repo/service" && {
    echo "$base $base_id"
    cat Dockerfile .dockerignore requirements.lock build-requirements.lock pyproject.toml
    find model_server -name '*.py' -type f | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -c1-12)
  tag=localhost/model-server:$version-$inputs
  if [[ -z $(built_inputs "$tag") ]]; then
    # pip inside the build reaches PyPI through the TLS the host trusts: its CA bundle goes in as a
    # secret, mounted over the base's bundle for the pip steps only.
    local ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
    buildah bud --layers --pull=false --network host --quiet \
      --secret "id=ca-certificates,src=$ca" \
      ${base:+--build-arg "PYTHON_IMAGE=$base"} --build-arg "VERSION=$version" \
      --label "$INPUTS_LABEL=$inputs" --file "$repo/service/Dockerfile" --tag "$tag" "$repo/service" >/dev/null
    echo "built $tag"
  else
    echo "$tag is up to date"
  fi
  mkdir -p "$(dirname "$ref_file")"
  echo "$tag" >"$ref_file"
}

# A stage of a Dockerfile of ours built on the local Debian base. Its inputs: the Dockerfile, the
# stage, the build arguments (exact Debian versions), the base's ID and every file of the context.
dockerfile() {
  local file=$1 target=$2 image=$3 context=$4 base=${BASE_IMAGE:-${PYTHON_BASE_IMAGE:?}} inputs arg
  shift 4
  local args=(--build-arg "BASE_IMAGE=$base")
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  inputs=$({
    echo "$target $base $(buildah inspect --type image --format '{{.FromImageID}}' "$base") $*"
    cat "$file"
    (cd "$context" && find . -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-32)
  if [[ $(built_inputs "$image") == "$inputs" ]]; then
    echo "$image is up to date"
    return
  fi
  # apt inside the build reaches Debian's mirror over plain HTTP (apt checks the signatures).
  buildah bud --layers --pull=false --network host --quiet --target "$target" "${args[@]}" \
    --label "$INPUTS_LABEL=$inputs" --file "$file" --tag "$image" "$context" >/dev/null
  echo "built $image"
}

archive() {
  local image=$1 out=$2
  rm -f "$out"
  buildah push --quiet "$image" "docker-archive:$out:$image" >/dev/null
  $sudo chown "$(id -u):$(id -g)" "$out"
}

# The image ID (config digest) of a built image: what the loader compares with the cluster's copy.
image_id() {
  buildah inspect --type image --format '{{.FromImageID}}' "$1"
}

cmd=${1:?usage: build.sh static|python-base|server|dockerfile|archive|image-id ...}
shift
case $cmd in
  static) static "$@" ;;
  python-base) python_base ;;
  server) server "$@" ;;
  dockerfile) dockerfile "$@" ;;
  archive) archive "$@" ;;
  image-id) image_id "$@" ;;
  *) echo "build.sh: unknown command $cmd" >&2; exit 2 ;;
esac
