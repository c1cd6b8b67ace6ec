#!/usr/bin/env bash
# Builds hearth (Release) and runs the main job: a completion from the stories260K model.
#   scripts/run.sh                      # default prompt
#   scripts/run.sh "Lily and Tom" -n 64 # any `hearth run` arguments after the prompt
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-node-deps.sh webui  # the web UI that `hearth serve` serves is built into the binary
cmake --preset release >/dev/null
cmake --build --preset release --target hearth
SHARED="${HEARTH_SHARED:-$(pwd)/../shared}"
PROMPT="${1:-Once upon a time}"
shift || true
exec build/release/hearth run "$SHARED/models/stories260K.gguf" "$PROMPT" --raw -n 48 --temperature 0 "$@"
