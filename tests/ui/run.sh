#!/bin/sh
# The web UI's end-to-end tests: Playwright (playwright-core) drives Debian's headless Chromium
# against real `hearth serve` processes (tests/ui/e2e.test.mjs). Env: HEARTH_BIN, HEARTH_SHARED,
# HEARTH_UI_ARTIFACTS (screenshots of every view land there). Exits 77 (CTest: skipped) when node,
# Chromium or the npm packages are missing; scripts/test.sh installs all three.
cd "$(dirname "$0")" || exit 1
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed"
  exit 77
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "SKIP: Chromium is not installed (apt-get install chromium; scripts/install-deps.sh does)"
  exit 77
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  echo "SKIP: npm packages missing; run: scripts/install-node-deps.sh tests/ui"
  exit 77
fi
exec node --test --test-concurrency=1 e2e.test.mjs
