#!/usr/bin/env bash
# THE test command (README): installs what is missing, builds, and runs every test with ctest.
# The ctest fixtures start their own PostgreSQL, Redis and service stack on private ports.
#   scripts/test.sh              Debug build in build/, all tests
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-asan/, all tests
#   scripts/test.sh --fuzz SECS  clang libFuzzer build in build-fuzz/, each fuzzer for SECS seconds
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mode=plain secs=30
case ${1:-} in
  --sanitize) mode=asan ;;
  --fuzz) mode=fuzz; secs=${2:-30} ;;
  "") ;;
  *) echo "usage: $0 [--sanitize | --fuzz SECONDS]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/install-deps.sh
else
  bash scripts/install-deps.sh || { echo "test.sh: run as root once to install packages" >&2; exit 1; }
fi
jobs=$(nproc)

case $mode in
  plain)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON >/dev/null
    cmake --build build -j"$jobs"
    cd build && ctest --output-on-failure -j1 --timeout 600
    ;;
  asan)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON -DSANITIZER=address,undefined >/dev/null
    cmake --build build-asan -j"$jobs"
    cd build-asan && ctest --output-on-failure -j1 --timeout 900
    ;;
  fuzz)
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON \
      -DSANITIZER=address,undefined >/dev/null
    cmake --build build-fuzz -j"$jobs" --target $(cd test/fuzz && ls fuzz_*.c | sed 's/\.c$//')
    status=0
    for src in test/fuzz/fuzz_*.c; do
      name=$(basename "$src" .c)
      corpus="build-fuzz/corpus/$name"
      mkdir -p "$corpus"
      [ -d "test/fuzz/corpus/$name" ] && cp -r "test/fuzz/corpus/$name/." "$corpus/"
      echo "fuzz: $name for ${secs}s"
      if ! "build-fuzz/test/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$corpus" >"build-fuzz/$name.log" 2>&1; then
        echo "fuzz: $name FAILED" >&2
        tail -n 40 "build-fuzz/$name.log" >&2
        status=1
      else
        grep -E 'stat::number_of_executed_units' "build-fuzz/$name.log" || true
      fi
    done
    n=$(ls test/fuzz/fuzz_*.c | wc -l)
    if [ $status -eq 0 ]; then echo "$n passed, 0 failed"; else echo "fuzzers failed" >&2; fi
    exit $status
    ;;
esac
