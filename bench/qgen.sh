#!/usr/bin/env bash
# Benchmark: question generation through the edge (svc-qgen, two replicas, svc-pdf) against the
# fake LLM, beside two baselines driven against the same fake in the same run (bench/qgen_bench.py
# says what each is): one question per call in sequence, and all questions in one call. Q = 25
# and 100, the bound ceil(Q/(q*C))*L, a cache hit, 5% injected 429/5xx, and a slow tail (SLOW_RATE
# of the calls SLOW_FACTOR times longer); each run reports the duplicates hedging started and the
# tokens they cost.
#   bench/qgen.sh            (from the repo root; builds what is missing into build/)
# Env: BUILD_DIR (build), C (provider concurrency and QGEN_PARALLEL, 10), TTFT_MS (1000),
# TOKENS_PER_S (50), SCALE (0.1), SLOW_RATE (0.1), SLOW_FACTOR (4), QGEN_HEDGE_MAX_EXTRA (the
# service's, 25; 0 turns hedging off for a comparison), QGEN_HEDGE_MIN_MS (1000 x SCALE: the
# service's margin scaled like every modelled delay), QGEN_STREAM (the service's, true),
# QGEN_SPARE_PCT (the service's, 25: the first wave asks 25% more questions, spread over its
# calls and the free slots, and what is still being written once the set is full is cancelled). Uses the test harness (test/harness: PostgreSQL, Redis, the
# services, the fake LLM and the edge on the fixture ports) in a temporary state dir, so do not
# run it while the test suite runs. Results: bench/results/qgen-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
C=${C:-10}
for tool in python3 mutool ps2pdf; do
  command -v "$tool" >/dev/null || { echo "qgen bench: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done
BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth svc-pdf svc-qgen edge >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench.XXXXXX)
chmod 755 "$state"
export CM_TEST_PG_PORT=25432 CM_TEST_REDIS_PORT=26379
# The service may run as many calls as the provider admits.
export QGEN_PARALLEL=$C LLM_MAX_CONCURRENCY=$C LOG_LEVEL=warn
# The service's default spares (the test stack turns them off for its hedging test).
export QGEN_SPARE_PCT=${QGEN_SPARE_PCT:-25}
export QGEN_HEDGE_MIN_MS=${QGEN_HEDGE_MIN_MS:-$(awk -v s="${SCALE:-0.1}" 'BEGIN { printf "%d", 1000 * s }')}

cleanup() {
  test/harness/stack.sh stop "$state" "$BUILD_DIR" >/dev/null 2>&1 || true
  test/harness/pgredis.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
test/harness/pgredis.sh start "$state" >/dev/null
test/harness/stack.sh start "$state" "$BUILD_DIR" >/dev/null
bash test/data/gen_test_pdfs.sh real "$state/real.pdf"

result=$out/qgen-$(date -u +%Y%m%dT%H%M%SZ).txt
python3 -u bench/qgen_bench.py --pdf "$state/real.pdf" --concurrency "$C" \
  --ttft-ms "${TTFT_MS:-1000}" --tokens-per-s "${TOKENS_PER_S:-50}" --scale "${SCALE:-0.1}" \
  --slow-rate "${SLOW_RATE:-0.1}" --slow-factor "${SLOW_FACTOR:-4}" \
  | tee "$result"
echo "saved: $result"
