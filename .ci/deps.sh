#!/usr/bin/env bash
# Install the Debian packages pgcutover needs to build and test, when missing.
set -euo pipefail
pkgs=(build-essential clang pkg-config libevent-dev libinih-dev libssl-dev libpq-dev
      postgresql-15 postgresql-client-15 python3-pytest python3-psycopg pgbouncer openssl
      libclang-rt-14-dev libpostgresql-jdbc-java default-jdk-headless clang-format
      libsystemd-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a cluster on 5432; the tests start their own.
