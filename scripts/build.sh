#!/usr/bin/env bash
# Configures and builds the project; the one place that knows the build directories and flags.
#   scripts/build.sh [TARGET...]              build/       RelWithDebInfo (what up.sh runs and test.sh tests)
#   scripts/build.sh --sanitize [TARGET...]   build-asan/  Debug, -fsanitize=address,undefined ($CC or cc)
#   scripts/build.sh --fuzz [TARGET...]       build-fuzz/  clang, libFuzzer drivers, ASan + UBSan
# Installs missing Debian packages first when run as root (scripts/install-deps.sh); without root
# it only reports what is missing. BUILD_DIR overrides the directory. With no TARGET, builds all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

kind=plain
case ${1:-} in
  --sanitize) kind=asan; shift ;;
  --fuzz) kind=fuzz; shift ;;
  -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
  -*) echo "usage: $0 [--sanitize | --fuzz] [TARGET...]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/install-deps.sh
else
  bash scripts/install-deps.sh || echo "build: continuing without the missing packages" >&2
fi

args=()
case $kind in
  plain)
    dir=${BUILD_DIR:-build}
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
    ;;
  asan)
    dir=${BUILD_DIR:-build-asan}
    args=(-DCMAKE_BUILD_TYPE=Debug "-DSANITIZER=address,undefined")
    ;;
  fuzz)
    dir=${BUILD_DIR:-build-fuzz}
    export CC=clang
    args=(-DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON "-DSANITIZER=address,undefined")
    ;;
esac

cmake -S . -B "$dir" "${args[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
