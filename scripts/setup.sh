#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh machine of this project's kind, and nothing twice:
# Debian packages (PostgreSQL 15 server and client, the PostgreSQL JDBC driver, a JDK, openssl), the npm packages
# (which bring Node 24), and the real kube-apiserver, etcd, kubectl and helm built from the Go module proxy into a cache.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql-15)
command -v psql >/dev/null || need_pkgs+=(postgresql-client-15)
[ -f /usr/share/java/postgresql.jar ] || need_pkgs+=(libpostgresql-jdbc-java)
command -v java >/dev/null || need_pkgs+=(default-jdk-headless)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need_pkgs[*]} (run: sudo apt-get update && sudo apt-get install -y ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: control plane (kube-apiserver, etcd, kubectl, kube-controller-manager)"
start=$(date +%s)
bin_dir=$(bash test/controlplane/build.sh)
echo "setup: control plane ready in $bin_dir ($(( $(date +%s) - start )) s)"

echo "setup: helm v4 (server-side apply, for the CAST chart tests)"
start=$(date +%s)
helm_bin=$(bash test/helm/build.sh)
echo "setup: helm ready at $helm_bin ($(( $(date +%s) - start )) s)"
