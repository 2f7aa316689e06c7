#!/usr/bin/env bash
# Build the bundle archive of a model release tag, reproducibly, and check it before anyone ships it.
#
#   .github/scripts/build-model-release.sh models/iris-classifier/1.3.0 build/release
#
# Packages models/<name>/train.py:build with `model-server package` twice, refuses unless both archives
# are byte-identical, loads the bundle as the server would (`model-server validate`), and writes
# <out>/<name>-<version>.tar.gz plus its .sha256. In GitHub Actions the facts go to $GITHUB_OUTPUT.
set -euo pipefail

tag=${1:?usage: build-model-release.sh models/<name>/<version> OUT_DIR}
out=${2:?usage: build-model-release.sh models/<name>/<version> OUT_DIR}
model_server=${MODEL_SERVER:-model-server}

if [[ ! $tag =~ ^models/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?)$ ]]; then
  echo "error: tag '$tag' is not models/<name>/<semantic version>, e.g. models/iris-classifier/1.3.0" >&2
  exit 1
fi
name=${BASH_REMATCH[1]}
version=${BASH_REMATCH[3]}
train=models/$name/train.py
if [[ ! -f $train ]]; then
  echo "error: $train does not exist: a model's training code lives there (see models/README.md)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
archive=$name-$version.tar.gz
for build in first second; do
  "$model_server" package --from-python "$train:build" --name "$name" --version "$version" \
    --out "$work/$build/$name" --archive "$work/$build/$archive" >&2
done
if ! cmp -s "$work/first/$archive" "$work/second/$archive"; then
  echo "error: two builds of $name $version differ: seed every random choice in $train" >&2
  exit 1
fi
"$model_server" validate "$work/first/$name" >&2

mkdir -p "$out"
cp "$work/first/$archive" "$out/$archive"
sha256=$(sha256sum "$out/$archive" | cut -d' ' -f1)
echo "$sha256  $archive" > "$out/$archive.sha256"
echo "built $out/$archive (sha256 $sha256)"
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  {
    echo "name=$name"
    echo "version=$version"
    echo "archive=$out/$archive"
    echo "sha256=$sha256"
  } >> "$GITHUB_OUTPUT"
fi
