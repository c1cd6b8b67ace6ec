#!/usr/bin/env bash
# Installs the Debian packages hearth needs to build, test and benchmark. Idempotent:
# packages already present are skipped, so a second run does no network access.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libpcre2-dev
  libcpp-httplib-dev libssl-dev libcurl4-openssl-dev libedit-dev nginx-light ccache
  python3 python3-numpy python3-jinja2 clang-format
)
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
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
