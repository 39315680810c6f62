#!/usr/bin/env bash
# Set up a Debian 12 machine (as root) to build ingesta, and build it into ./build.
#   bash packaging/build.sh [--buildtype=release] [other meson options]
# Idempotent: installed packages are skipped, an existing build dir is reused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build tools and every design-card library, found by meson through pkg-config.
PACKAGES=(build-essential meson ninja-build pkg-config python3 zstd sqlite3
  default-libmysqlclient-dev libpq-dev libmongoc-dev libbson-dev libsqlite3-dev
  libcurl4-openssl-dev libzstd-dev libjansson-dev libssl-dev clang-format)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "build.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ -d build ]]; then
  meson configure build "$@" >/dev/null
else
  meson setup build "$@"
fi
ninja -C build
echo "build.sh: built $(pwd)/build/ingesta ($(./build/ingesta version))" >&2
