#!/usr/bin/env bash
# Quick start: installs the pinned toolchain and dependencies, builds, and runs pgmux in front of a
# throwaway local PostgreSQL it starts itself. Prints the psql connection string; Ctrl-C stops both.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/system-deps.sh"
# shellcheck source=bootstrap.sh
source "$here/bootstrap.sh"
pnpm run -s build
exec node test/dist/scripts/dev.js
