#!/usr/bin/env bash
# Install the Debian packages pgcutover needs to build and test, when missing.
set -euo pipefail
pkgs=(build-essential clang pkg-config libevent-dev libinih-dev libssl-dev libpq-dev
      postgresql-15 postgresql-client-15 python3-pytest python3-psycopg pgbouncer openssl
      libclang-rt-14-dev libpostgresql-jdbc-java default-jdk-headless clang-format)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm for the node-postgres tests (any Node.js >= 18 will do, from wherever)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a cluster on 5432; the tests start their own.
# node-postgres for tests/integration/test_listen_txn.py, as package-lock.json pins it (Debian's
# node-pg package is not used: the registry's own, in tests/integration/node/node_modules)
(cd "$(dirname "$0")/../tests/integration/node" && npm ci --no-audit --no-fund --loglevel=error)
