#!/usr/bin/env bash
# Regenerates every golden file: runs each generator script in tools/goldens/
# (gen_*.mjs / *.mjs with node, gen_*.py with /usr/bin/python3), in name order.
# Installs the pinned node-llama-cpp (package-lock.json) with `npm ci` when node_modules is missing.
# Env: HEARTH_SHARED = shared test-data folder (default: <repo>/../shared).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [[ ! -d node_modules/node-llama-cpp ]]; then
  echo "regen: installing node dependencies (npm ci)" >&2
  # The pinned package ships prebuilt CPU binaries; its postinstall (which may try to download or
  # build llama.cpp) is not needed because the generators call getLlama({build: "never"}).
  if ! npm ci --no-audit --no-fund --ignore-scripts; then
    # `npm ci` refuses a lock file that lacks some optional per-platform packages (a registry mirror
    # without them produced it); fall back to an install that still honours the locked versions.
    echo "regen: npm ci failed; falling back to npm install --no-save" >&2
    npm install --no-audit --no-fund --ignore-scripts --no-save
  fi
fi

shopt -s nullglob
ran=0
for script in "$here"/*.mjs; do
  echo "regen: node $(basename "$script")" >&2
  node "$script"
  ran=$((ran + 1))
done
for script in "$here"/gen_*.py; do
  echo "regen: python3 $(basename "$script")" >&2
  /usr/bin/python3 "$script"
  ran=$((ran + 1))
done
echo "regen: ran $ran generator(s)" >&2
