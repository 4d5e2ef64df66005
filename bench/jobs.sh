#!/usr/bin/env bash
# Benchmark: claim+complete throughput of the job queue (cm/jobs.h) on a PostgreSQL of its own.
#   bench/jobs.sh            (from the repo root; builds bench_jobs into build/)
# Env: TASKS (tasks per job, 2000), BUILD_DIR (build), PG_FSYNC (on; "off" as the test fixture
# runs, which shows the queue's own cost rather than the disk's).
# Runs PostgreSQL on 127.0.0.1:25732 in a temporary state dir and stops it at the end; prints, for
# 1 and 4 claiming threads and claim batches of 1 and 10, the time and tasks/s of draining one job
# (bench/jobs/bench_jobs.c). Results: bench/results/jobs-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh

TASKS=${TASKS:-2000}
BUILD_DIR=${BUILD_DIR:-$root/build}
PG_PORT=25732
export PG_FSYNC=${PG_FSYNC:-on}

BUILD_DIR=$BUILD_DIR bash scripts/build.sh bench_jobs >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench.XXXXXX)

cleanup() {
  pg_stop "$state" immediate
  rm -rf "$state"
}
trap cleanup EXIT

pg_start "$state" "$PG_PORT"
result=$out/jobs-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "jobs $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, fsync=$PG_FSYNC, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  "$BUILD_DIR/test/bench_jobs" "host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres" "$TASKS"
} | tee "$result"
echo "jobs: results in ${result#"$root"/}"
