#!/usr/bin/env bash
# Builds the real kube-apiserver, kube-controller-manager, etcd and a matching kubectl from this module (versions pinned in go.mod) into a
# cache outside the repo, keyed by version. Prints the directory holding the binaries. A warm cache makes this a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kube=$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/go.mod")
etcd=$(sed -n 's/^\s*go.etcd.io\/etcd\/server\/v3 \(v[0-9.]*\)$/\1/p' "$here/go.mod")
out="${XDG_CACHE_HOME:-$HOME/.cache}/imaging-db-mtls-operator/controlplane/kube-$kube-etcd-$etcd"
version_flags="-s -w -X k8s.io/component-base/version.gitVersion=$kube -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$kube" | cut -d. -f2)"
version_flags="$version_flags -X k8s.io/client-go/pkg/version.gitVersion=$kube -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(echo "$kube" | cut -d. -f2)"

declare -A packages=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
)
mkdir -p "$out"
cd "$here"
export GOFLAGS=-mod=mod
for bin in etcd kube-apiserver kubectl kube-controller-manager; do
  [ -x "$out/$bin" ] && continue
  command -v go >/dev/null || { echo "go is needed to build $bin (see TESTING.md)" >&2; exit 1; }
  start=$(date +%s)
  go build -trimpath -o "$out/$bin.tmp" -ldflags "$version_flags" "${packages[$bin]}" >&2
  mv "$out/$bin.tmp" "$out/$bin"
  echo "built $bin ($kube / etcd $etcd) in $(( $(date +%s) - start )) s" >&2
done
echo "$out"
