#!/usr/bin/env bash
# Fetches the prometheus-operator CRDs the monitoring manifests (deploy/monitoring/) need, PrometheusRule and
# ServiceMonitor, from the prometheus-operator Go module at a pinned version and checksum, into a cache outside the
# repo. Prints the directory holding them. A warm cache makes this a no-op.
set -euo pipefail
module=github.com/prometheus-operator/prometheus-operator
version=v0.85.0
sum="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
files=(monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml)
out="${XDG_CACHE_HOME:-$HOME/.cache}/imaging-db-mtls-operator/monitoring-crds/prometheus-operator-$version"

missing=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "$out"; exit 0; fi

command -v go >/dev/null || { echo "go is needed to fetch $module $version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Outside any module, so the repo's go.mod files play no part.
json=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module@$version")
dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
got=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')
[ "$got" = "$sum" ] || { echo "$module $version: checksum $got, expected $sum" >&2; exit 1; }
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
for f in "${files[@]}"; do cp "$dir/example/prometheus-operator-crd/$f" "$out.tmp/$f"; done
chmod u+w "$out.tmp"/*
rm -rf "$out"
mv "$out.tmp" "$out"
echo "fetched $module $version: ${files[*]}" >&2
echo "$out"
