#!/bin/sh
# Runs the official OpenAI and Ollama JavaScript clients against a real `hearth serve`.
# Env: HEARTH_BIN (the hearth binary), HEARTH_SHARED (the shared data folder with
# models/stories260K.gguf). Exits 77 (CTest: skipped) when node or the npm packages are missing;
# install them with: (cd tests/clients && npm ci || npm install --no-save --ignore-scripts)
cd "$(dirname "$0")" || exit 1
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed"
  exit 77
fi
if [ ! -d node_modules/openai ] || [ ! -d node_modules/ollama ]; then
  echo "SKIP: npm packages missing; run: (cd tests/clients && npm install --no-save --ignore-scripts)"
  exit 77
fi
exec node --test --test-concurrency=1 clients.test.mjs
