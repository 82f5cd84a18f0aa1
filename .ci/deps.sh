#!/usr/bin/env bash
# Install the Debian packages pgcutover needs to build and test, when missing.
set -euo pipefail
pkgs=(build-essential clang pkg-config libevent-dev libinih-dev libssl-dev libpq-dev
      postgresql-15 postgresql-client-15 python3-pytest python3-psycopg pgbouncer openssl
      libclang-rt-14-dev libpostgresql-jdbc-java default-jdk-headless clang-format
      # operations (docs/operations.md): sd_notify, the man pages, the Debian package and
      # lintian, promtool and PgBouncer's exporter for the monitoring tests, logrotate,
      # man and groff to check the man pages
      libsystemd-dev scdoc python3 debhelper dpkg-dev lintian prometheus
      prometheus-pgbouncer-exporter logrotate man-db groff-base procps)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm for the node-postgres tests (any Node.js >= 18 will do, from wherever)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	# The services some of these packages bring (PostgreSQL's cluster on 5432, prometheus,
	# the exporter) are not started: the tests start what they need themselves.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		{ [ -z "$policy" ] || $sudo rm -f "$policy"; exit 1; }
	[ -z "$policy" ] || $sudo rm -f "$policy"
fi
# node-postgres for tests/integration/test_listen_txn.py, as package-lock.json pins it (Debian's
# node-pg package is not used: the registry's own, in tests/integration/node/node_modules)
(cd "$(dirname "$0")/../tests/integration/node" && npm ci --no-audit --no-fund --loglevel=error)
