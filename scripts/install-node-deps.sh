#!/usr/bin/env bash
# Installs npm packages (idempotent; skipped when already present):
#   webui          the web UI's build tools (Vite, TypeScript, Preact): the build compiles the UI
#                  into the hearth binary, and serves a "UI not built" page without them
#   tools/goldens  node-llama-cpp 3.22.1 (llama.cpp, the peer) for cross-engine checks
#   tests/clients  the official `openai` and `ollama` client libraries for the server tests
#   tests/ui       playwright-core and axe-core for the web UI's end-to-end tests
# Tests that need them skip cleanly when they are missing (no network, no npm).
#   scripts/install-node-deps.sh          # all of them
#   scripts/install-node-deps.sh webui    # only these folders
set -uo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null 2>&1 || { echo "install-node-deps: npm not found, skipping" >&2; exit 0; }
dirs=("$@")
[[ ${#dirs[@]} -gt 0 ]] || dirs=(webui tools/goldens tests/clients tests/ui)
for dir in "${dirs[@]}"; do
  [[ -f $dir/package.json ]] || continue
  if [[ -d $dir/node_modules && $dir/node_modules -nt $dir/package.json ]]; then continue; fi
  echo "install-node-deps: installing $dir" >&2
  # `npm ci` is exact but fails on mirrors lacking some optional platform packages; fall back.
  (cd "$dir" && { npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1 ||
                  npm install --no-save --ignore-scripts --no-audit --no-fund >/dev/null 2>&1; }) ||
    echo "install-node-deps: could not install $dir (tests that need it will skip)" >&2
done
exit 0
