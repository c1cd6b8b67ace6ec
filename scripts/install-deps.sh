#!/usr/bin/env bash
# Installs the Debian packages hearth needs to build, test and benchmark. Idempotent:
# packages already present are skipped, so a second run does no network access.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libpcre2-dev
  libcpp-httplib-dev libssl-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev zlib1g-dev nginx-light ccache
  python3 python3-numpy python3-jinja2 clang-format
  chromium  # the web UI's end-to-end tests (Playwright drives Debian's headless Chromium)
)
# The AArch64 (NEON) stage of the tests: a cross compiler, qemu-user to run its test program, and
# the target's libraries from Debian multiarch (fmt, PCRE2, GoogleTest; nlohmann-json is
# header-only). Only on x86-64 hosts; an AArch64 host builds natively.
ARM_PKGS=()
if [[ "$(dpkg --print-architecture)" == "amd64" ]]; then
  ARM_PKGS=(g++-aarch64-linux-gnu qemu-user-static libfmt-dev:arm64 libpcre2-dev:arm64 libgtest-dev:arm64)
  PKGS+=("${ARM_PKGS[@]}")
fi
# node and npm may come from elsewhere (e.g. NodeSource, which bundles npm); only ask
# Debian for them when the commands are missing.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  if ((${#ARM_PKGS[@]})) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
