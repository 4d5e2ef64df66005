#!/usr/bin/env bash
# Question quality (issue 13): real-looking documents through svc-pdf and both providers of
# svc-qgen (the offline one and the fake LLM), one table row per set: valid, grounded %,
# near-duplicates, the most used distractor, the answer letters, where the blanks fall, pages
# cited (bench/quality/measure.h states every rule). The documents: the bash manual typeset by
# groff (gen_test_pdfs.sh real, a manual-like "real" document), the CRAN-like package manual of
# the offline test (URLs, e-mail addresses, code and formulas among the prose), and any PDF given.
#   bench/quality.sh [--check] [--count N] [[LABEL=]FILE.pdf ...]     (from anywhere)
# --check exits 1 when a set is below the thresholds of bench/quality-thresholds.env (or the file
# QUALITY_THRESHOLDS names; the report names each failure). ctest runs it as integration_quality, inside the pgredis fixture.
# Env: BUILD_DIR (build; the report is built there when missing), QUALITY_BIN (the report binary,
# set by ctest), CM_TEST_PG and CM_TEST_REDIS_PORT (a PostgreSQL conninfo and a Redis port on
# 127.0.0.1 to use; otherwise both are started on free ports in a temporary directory, so a
# manual run needs no lock), FAKELLM_URL (a running fake LLM's base URL, ".../v1"; otherwise
# one is started on a free port). Manual runs save the table as bench/results/quality-<time>.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/lib/servers.sh
. "$root/scripts/lib/servers.sh"

check=()
count=25
docs=()
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=(--check) ;;
    --count) count=$2; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "usage: $0 [--check] [--count N] [[LABEL=]FILE.pdf ...]" >&2; exit 2 ;;
    *) docs+=("$1") ;;
  esac
  shift
done

bin=${QUALITY_BIN:-}
if [ -z "$bin" ]; then
  BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
  bin=$BUILD_DIR/test/quality_report
  [ -x "$bin" ] || BUILD_DIR=$BUILD_DIR bash "$root/scripts/build.sh" quality_report >/dev/null
fi
for tool in python3 mutool ps2pdf curl; do
  command -v "$tool" >/dev/null || { echo "quality: $tool is required (scripts/install-deps.sh)" >&2; exit 2; }
done

state=$(mktemp -d /tmp/learnapp-quality.XXXXXX)
chmod 755 "$state" # PostgreSQL may run as another user
own_pgredis=0
cleanup() {
  proc_stop fakellm "$state/run"
  if [ "$own_pgredis" = 1 ]; then
    CM_TEST_PG_PORT=$pg_port CM_TEST_REDIS_PORT=$redis_port \
      "$root/test/harness/pgredis.sh" stop "$state" >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -n "${CM_TEST_PG:-}" ] && [ -n "${CM_TEST_REDIS_PORT:-}" ]; then
  db=$CM_TEST_PG
  redis_port=$CM_TEST_REDIS_PORT
else
  pg_port=$(free_port)
  redis_port=$(free_port)
  own_pgredis=1
  CM_TEST_PG_PORT=$pg_port CM_TEST_REDIS_PORT=$redis_port \
    "$root/test/harness/pgredis.sh" start "$state" >/dev/null
  db="host=127.0.0.1 port=$pg_port dbname=postgres user=postgres connect_timeout=2"
fi

fake=${FAKELLM_URL:-}
if [ -z "$fake" ]; then
  port=$(free_port)
  proc_start fakellm "$state/run" "$state/fakellm.log" \
    python3 "$root/test/fakellm/fakellm.py" --port "$port"
  wait_http "http://127.0.0.1:$port/healthz" 20 || { tail -n 20 "$state/fakellm.log" >&2; exit 2; }
  fake=http://127.0.0.1:$port/v1
fi

bash "$root/test/data/gen_test_pdfs.sh" real "$state/manual.pdf"

if [ ${#check[@]} -gt 0 ]; then
  set -a
  # shellcheck source=quality-thresholds.env
  . "${QUALITY_THRESHOLDS:-$root/bench/quality-thresholds.env}"
  set +a
fi

t0=$SECONDS
rc=0
DATABASE_URL=$db REDIS_PORT=$redis_port "$bin" "${check[@]}" --count "$count" --fake "$fake" \
  "bash manual=$state/manual.pdf" --cran "${docs[@]}" >"$state/table.md" || rc=$?
cat "$state/table.md"
echo "quality: $((SECONDS - t0)) s, $count questions a set"
if [ -z "${CM_TEST_PG:-}" ] && [ -s "$state/table.md" ]; then
  mkdir -p "$root/bench/results"
  cp "$state/table.md" "$root/bench/results/quality-$(date -u +%Y%m%dT%H%M%SZ).md"
fi
exit "$rc"
