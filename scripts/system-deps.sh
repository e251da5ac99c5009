#!/usr/bin/env bash
# Installs, through apt-get and only when missing, the system packages the tests use: PostgreSQL's server
# binaries (the harness starts throwaway clusters from them), its clients (psql, pgbench), Chromium and promtool.
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
