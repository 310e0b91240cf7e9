#!/usr/bin/env bash
# Builds the real helm (v4: installs and upgrades with server-side apply) from this module (version pinned in go.mod)
# into a cache outside the repo, keyed by version. Prints the path of the binary. A warm cache makes this a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^\s*helm.sh\/helm\/v4 \(v[0-9.]*\).*$/\1/p' "$here/go.mod")
out="${XDG_CACHE_HOME:-$HOME/.cache}/imaging-db-mtls-operator/helm/helm-$version"
if [ ! -x "$out/helm" ]; then
  command -v go >/dev/null || { echo "go is needed to build helm (see TESTING.md)" >&2; exit 1; }
  mkdir -p "$out"
  start=$(date +%s)
  cd "$here"
  GOFLAGS=-mod=mod go build -trimpath -o "$out/helm.tmp" \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" helm.sh/helm/v4/cmd/helm >&2
  mv "$out/helm.tmp" "$out/helm"
  echo "built helm $version in $(( $(date +%s) - start )) s" >&2
fi
echo "$out/helm"
