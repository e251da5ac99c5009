#!/usr/bin/env bash
# Installs, through apt-get and only when missing, the system packages the tests use: PostgreSQL's server
# binaries (the harness starts throwaway clusters from them), its clients (psql, pgbench), Chromium and promtool,
# and the non-Node drivers of the driver matrix (asyncpg, psycopg 3, the JDBC driver).
set -euo pipefail
pg_bin_dir() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}
missing=()
pg_bin_dir >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
# The admin tests: headless Chromium loads the dashboard, promtool checks the /metrics output.
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
# The driver matrix (test/integration/driver-matrix.test.ts) runs test/drivers/* with Debian's Python 3 and the
# JDBC driver's jar, which javac compiles a worker against.
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
deb_installed python3-asyncpg || missing+=(python3-asyncpg)
deb_installed python3-psycopg || missing+=(python3-psycopg)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "system-deps: missing ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "system-deps: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
