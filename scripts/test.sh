#!/usr/bin/env bash
# THE test command (README): installs what is missing (as root), builds, and runs every test with
# ctest: unit, integration and end-to-end. The ctest fixtures start their own PostgreSQL, Redis and
# service stack on private ports (test/harness/), so nothing needs to run beforehand.
#   scripts/test.sh [-- CTEST_ARGS...]             build/, all tests
#   scripts/test.sh --sanitize [-- CTEST_ARGS...]  build-asan/ (ASan + UBSan), all tests
#   scripts/test.sh --tsan [-- CTEST_ARGS...]      build-tsan/ (ThreadSanitizer), unit and integration
#   scripts/test.sh --fuzz SECONDS                 build-fuzz/ (clang), each test/fuzz/fuzz_* for SECONDS
# Exits non-zero when anything fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { echo "usage: $0 [--sanitize | --tsan | --fuzz SECONDS] [-- CTEST_ARGS...]" >&2; exit 2; }
mode=plain secs=0
case ${1:-} in
  --sanitize) mode=asan; shift ;;
  --tsan) mode=tsan; shift ;;
  --fuzz)
    mode=fuzz
    secs=${2:-}
    [[ $secs =~ ^[0-9]+$ ]] || usage
    shift 2
    ;;
  -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
esac
case ${1:-} in
  --) shift ;;
  "") ;;
  *) usage ;;
esac

# ctest; when a test that uses servers failed, the fixture servers' logs too (they explain most
# such failures).
run_ctest() {
  local dir=$1 f
  shift
  if (cd "$dir" && ctest --output-on-failure "$@"); then
    return 0
  fi
  if grep -q -v -E '^[0-9]+:unit_' "$dir/Testing/Temporary/LastTestsFailed.log" 2>/dev/null; then
    for f in "$dir"/test-state/logs/*.log "$dir"/test-state/postgres.log "$dir"/test-state/redis/redis.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $f" >&2
      tail -n 25 "$f" >&2
    done
  fi
  return 1
}

fuzzers() {
  local src
  for src in test/fuzz/fuzz_*.c; do
    [ -f "$src" ] && basename "$src" .c
  done
  return 0
}

case $mode in
  plain)
    bash scripts/build.sh
    run_ctest build "$@"
    ;;
  asan)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    bash scripts/build.sh --sanitize
    run_ctest build-asan "$@"
    ;;
  tsan)
    # Unit and integration tests only: the e2e tests run the services as separate processes behind
    # real HTTP, where a race would show in those processes' logs, not as a failed test; fuzzing
    # is single-threaded. Every report is printed and makes its test fail (exit code 66) when the
    # test ends. No suppressions: no third-party library has needed one.
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1"
    bash scripts/build.sh --tsan
    run_ctest build-tsan -L 'unit|integration' "$@"
    ;;
  fuzz)
    mapfile -t names < <(fuzzers)
    if [ ${#names[@]} -eq 0 ]; then
      echo "fuzz: no fuzzers (test/fuzz/fuzz_*.c): nothing to run"
      exit 0
    fi
    bash scripts/build.sh --fuzz "${names[@]}"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    out=build-fuzz/fuzz-runs
    mkdir -p "$out"
    passed=0 failed=0
    for name in "${names[@]}"; do
      # Work on a copy of the checked-in seeds: new inputs stay out of the source tree.
      corpus=$out/corpus/$name
      mkdir -p "$corpus" "$out/artifacts"
      if [ -d "test/fuzz/corpus/$name" ]; then cp -R "test/fuzz/corpus/$name/." "$corpus/"; fi
      dict=()
      if [ -f "test/fuzz/$name.dict" ]; then dict=(-dict="test/fuzz/$name.dict"); fi
      echo "fuzz: $name for ${secs}s"
      if "build-fuzz/test/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" "${dict[@]}" "$corpus" \
          >"$out/$name.log" 2>&1; then
        grep -h -E 'stat::(number_of_executed_units|peak_rss_mb)' "$out/$name.log" | sed 's/^/  /' || true
        passed=$((passed + 1))
      else
        echo "fuzz: $name FAILED (log: $out/$name.log, inputs: $out/artifacts/)" >&2
        tail -n 60 "$out/$name.log" >&2
        failed=$((failed + 1))
      fi
    done
    echo "fuzz: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    ;;
esac
