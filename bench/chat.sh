#!/usr/bin/env bash
# Benchmark: what svc-chat adds before an answer starts to stream. For each chat.Send: the time
# from the call to the first chat.delta of its chat at a subscriber, minus the fake LLM's time to
# first token (TTFT), at 1 chat and at 25 chats at once; p50 / p99 (goal: p99 < 50 ms at 25).
# Baseline in the same run: a client streaming straight from the fake (the fake's own share).
#   bench/chat.sh            (from the repo root)
# The driver (bench/chat/bench_chat.c) calls svc-chat over RPC and subscribes to both replicas'
# event publishers itself, as the edge does; the edge's chat routes and WebSocket forwarding are
# not in this path (they come with the edge). Env: BUILD_DIR (build), TTFT_MS (300),
# TOKENS_PER_S (50), SAMPLES1 (40), ROUNDS25 (8). Uses the test harness (PostgreSQL, Redis,
# svc-auth, svc-pdf, two svc-chat replicas, the fake LLM, the edge on the fixture ports) in a
# temporary state dir: run it under the test lock, not while the suite runs
# (flock /tmp/learnapp-test.lock bench/chat.sh). Results: bench/results/chat-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth svc-pdf svc-chat edge chat_bench >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench.XXXXXX)
chmod 755 "$state"
export CM_TEST_PG_PORT=25432 CM_TEST_REDIS_PORT=26379 LOG_LEVEL=warn
# 25 answers at once fit in the two replicas (CHAT_WORKERS - 1 = 23 each, room for an uneven
# split) and in the provider's slots.
export CHAT_WORKERS=24 LLM_MAX_CONCURRENCY=64

cleanup() {
  test/harness/stack.sh stop "$state" "$BUILD_DIR" >/dev/null 2>&1 || true
  test/harness/pgredis.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
test/harness/pgredis.sh start "$state" >/dev/null
test/harness/stack.sh start "$state" "$BUILD_DIR" >/dev/null

result=$out/chat-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "bench/chat.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  "$BUILD_DIR/bench/chat_bench" --pdf tcp://127.0.0.1:27102 \
    --chat tcp://127.0.0.1:27103,tcp://127.0.0.1:27113 \
    --events tcp://127.0.0.1:27203,tcp://127.0.0.1:27213 --fake http://127.0.0.1:28500 \
    --ttft-ms "${TTFT_MS:-300}" --tokens-per-s "${TOKENS_PER_S:-50}" \
    --samples1 "${SAMPLES1:-40}" --rounds25 "${ROUNDS25:-8}"
} | tee "$result"
echo "saved: $result"
