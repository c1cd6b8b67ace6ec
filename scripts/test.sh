#!/usr/bin/env bash
# Builds everything and runs all tests (unit, golden, CLI). Usage:
#   scripts/test.sh          # Release build in build/release
#   scripts/test.sh asan     # AddressSanitizer + UBSan build in build/asan
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/install-deps.sh
scripts/install-node-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j "$(nproc)"
