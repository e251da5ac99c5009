#!/usr/bin/env bash
# The whole test suite, on a fresh machine: system packages the tests need, the pinned toolchain, the
# workspace install, a build, then every unit and integration test. This is what .ci/run calls.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/system-deps.sh"
# shellcheck source=bootstrap.sh
source "$here/bootstrap.sh"
pnpm run -s lint
pnpm run -s test "$@"
