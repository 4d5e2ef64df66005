#!/usr/bin/env bash
# Benchmark: grading a class's quiz (svc-eval, two replicas, over RPC as the legacy evaluate-quiz
# route submits it) against a baseline that grades as the old system did, both driven at the same
# fake LLM in the same run (bench/eval_driver.c says what each is), with the latency model of
# bench/qgen.sh; then a second class with similar answers, for the grade cache's hit rate.
#   bench/eval.sh            (from the repo root; builds what is missing into build/)
# Env: BUILD_DIR (build), C (provider concurrency, 10), STUDENTS (25), MCQ (16), OPEN (4),
# OLD_INFLIGHT (students the baseline grades at once, 5: the old backend's), TTFT_MS (1000),
# TOKENS_PER_S (50), SCALE (0.1). Uses the test harness (test/harness: PostgreSQL, Redis, the
# services, the fake LLM and the edge on the fixture ports) in a temporary state dir, so run it
# under the test lock and never beside the test suite. Results: bench/results/eval-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
C=${C:-10}
for tool in python3 mutool ps2pdf; do
  command -v "$tool" >/dev/null || { echo "eval bench: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done
BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth svc-pdf svc-qgen svc-eval edge eval_bench >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench.XXXXXX)
chmod 755 "$state"
export CM_TEST_PG_PORT=25432 CM_TEST_REDIS_PORT=26379
# The services may run as many calls as the provider admits.
export LLM_MAX_CONCURRENCY=$C LOG_LEVEL=${LOG_LEVEL:-warn}

cleanup() {
  # KEEP_LOGS=1: the services' logs go to bench/results/eval-logs/ (LOG_LEVEL=info for detail).
  if [ "${KEEP_LOGS:-0}" = 1 ]; then rm -rf "$out/eval-logs" && cp -r "$state/logs" "$out/eval-logs"; fi
  test/harness/stack.sh stop "$state" "$BUILD_DIR" >/dev/null 2>&1 || true
  test/harness/pgredis.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
test/harness/pgredis.sh start "$state" >/dev/null
test/harness/stack.sh start "$state" "$BUILD_DIR" >/dev/null
bash test/data/gen_test_pdfs.sh real "$state/real.pdf"

result=$out/eval-$(date -u +%Y%m%dT%H%M%SZ).txt
"$BUILD_DIR/bench/eval_bench" --pdf "$state/real.pdf" --concurrency "$C" \
  --students "${STUDENTS:-25}" --mcq "${MCQ:-16}" --open "${OPEN:-4}" \
  --old-inflight "${OLD_INFLIGHT:-5}" --ttft-ms "${TTFT_MS:-1000}" \
  --tokens-per-s "${TOKENS_PER_S:-50}" --scale "${SCALE:-0.1}" | tee "$result"
echo "saved: $result"
