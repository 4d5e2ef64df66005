#!/usr/bin/env bash
# Configures and builds the project; the one place that knows the build directories and flags.
#   scripts/build.sh [TARGET...]              build/       RelWithDebInfo (what up.sh runs and test.sh tests)
#   scripts/build.sh --sanitize [TARGET...]   build-asan/  Debug, -fsanitize=address,undefined ($CC or cc)
#   scripts/build.sh --tsan [TARGET...]       build-tsan/  -O2 -g, -fsanitize=thread ($CC or cc)
#   scripts/build.sh --fuzz [TARGET...]       build-fuzz/  clang, libFuzzer drivers, ASan + UBSan
# Installs missing Debian packages first when run as root (scripts/install-deps.sh); without root
# it only reports what is missing. BUILD_DIR overrides the directory. With no TARGET, builds all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

kind=plain
case ${1:-} in
  --sanitize) kind=asan; shift ;;
  --tsan) kind=tsan; shift ;;
  --fuzz) kind=fuzz; shift ;;
  -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
  -*) echo "usage: $0 [--sanitize | --tsan | --fuzz] [TARGET...]" >&2; exit 2 ;;
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
  tsan)
    # Debug keeps assert(); -O2 (the plain build's level, whose warnings -Werror already passes;
    # -O1 trips -Wformat-truncation in svc-qgen) because TSan slows code 5-15x and tests have
    # deadlines; -g names the lines in TSan's stacks.
    dir=${BUILD_DIR:-build-tsan}
    args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O2 -g" -DSANITIZER=thread)
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
