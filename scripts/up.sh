#!/usr/bin/env bash
# THE first README command: installs what is missing (as root), builds into build/, and starts the
# whole system locally in the background, on 127.0.0.1 only:
#   PostgreSQL (PG_PORT 5432) and Redis (REDIS_PORT 6379), data under STATE_DIR (.state/);
#   every service that is built: svc-auth (AUTH_PORT 7101), svc-pdf (PDF_PORT 7102), svc-chat
#   (CHAT_PORT 7103), svc-qgen (QGEN_PORT 7104), svc-eval (EVAL_PORT 7105); each one's admin port
#   (/healthz /readyz /metrics) is <X>_ADMIN_PORT, by default its RPC port + 2000;
#   the edge on EDGE_ADDR (127.0.0.1:8080).
# A random JWT signing secret is made on first start (STATE_DIR/jwt.secret) and kept. Logs go to
# STATE_DIR/logs, pids to STATE_DIR/run, uploaded PDFs to STATE_DIR/pdfs (PDF_DATA_DIR).
# Idempotent: what already runs is kept, not started twice. BUILD_DIR overrides build/.
# Waits until the edge's /readyz answers 200 (UP_TIMEOUT_S, 60). Stop with scripts/down.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Relative STATE_DIR and BUILD_DIR are taken from where the script is called.
STATE_DIR=$(realpath -m "${STATE_DIR:-$root/.state}")
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
cd "$root"
# shellcheck source=lib/servers.sh
. scripts/lib/servers.sh

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
EDGE_ADDR=${EDGE_ADDR:-127.0.0.1:8080}
timeout_s=${UP_TIMEOUT_S:-60}

# service, env prefix, default RPC port (docs/architecture.md, "Ports and environment").
services=(svc-auth:AUTH:7101 svc-pdf:PDF:7102 svc-chat:CHAT:7103 svc-qgen:QGEN:7104 svc-eval:EVAL:7105)

# Build the binaries only (the tests are built by scripts/test.sh in the same directory).
targets=(edge)
for s in "${services[@]}"; do
  name=${s%%:*}
  if [ -f "$name/CMakeLists.txt" ] && [ -f "$name/main.c" ]; then targets+=("$name"); fi
done
echo "up: building ${targets[*]} in $BUILD_DIR"
BUILD_DIR=$BUILD_DIR bash scripts/build.sh "${targets[@]}" >/dev/null

run=$STATE_DIR/run logs=$STATE_DIR/logs
mkdir -p "$run" "$logs"
deadline=$((SECONDS + timeout_s))

fail() {
  echo "up: $1; last log lines:" >&2
  local f
  for f in "$logs"/*.log "$STATE_DIR/postgres.log" "$STATE_DIR/redis/redis.log"; do
    [ -f "$f" ] || continue
    echo "---- $f" >&2
    tail -n 20 "$f" >&2
  done
  echo "up: stop what did start with scripts/down.sh" >&2
  exit 1
}

# start NAME URL WHERE CMD...: starts NAME in the background unless it runs already, then waits until
# URL answers 200 (until the overall deadline; a failure at once if the process exits).
report=()
start() {
  local name=$1 url=$2 where=$3 what=started
  shift 3
  if proc_running "$name" "$run"; then what="already running"; fi
  proc_start "$name" "$run" "$logs/$name.log" "$@"
  until wait_http "$url" 1; do
    proc_running "$name" "$run" || fail "$name exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name is not ready ($url) after ${timeout_s}s"
  done
  report+=("$(printf '%-9s %-52s %s, pid %s' "$name" "$where" "$what" "$(cat "$run/$name.pid")")")
}

pg_start "$STATE_DIR" "$PG_PORT" || fail "PostgreSQL did not start on 127.0.0.1:$PG_PORT"
redis_start "$STATE_DIR" "$REDIS_PORT" || fail "Redis did not start on 127.0.0.1:$REDIS_PORT"

secret_file=$STATE_DIR/jwt.secret
if [ ! -s "$secret_file" ]; then
  (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$secret_file")
fi
chmod 600 "$secret_file"
JWT_SECRET=$(cat "$secret_file")
export JWT_SECRET
export DATABASE_URL="host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres"
export REDIS_HOST=127.0.0.1 REDIS_PORT
export PDF_DATA_DIR=${PDF_DATA_DIR:-$STATE_DIR/pdfs}

edge_env=()
for s in "${services[@]}"; do
  IFS=: read -r name prefix port <<<"$s"
  bin=$BUILD_DIR/$name/$name
  [ -x "$bin" ] || continue
  port_var=${prefix}_PORT admin_var=${prefix}_ADMIN_PORT
  port=${!port_var:-$port}
  admin=${!admin_var:-$((port + 2000))}
  extra=()
  if [ "$prefix" = QGEN ]; then
    # Job events on RPC port + 100; documents from svc-pdf. No LLM_BASE_URL: the offline provider.
    extra=("QGEN_EVENTS_URL=tcp://127.0.0.1:$((port + 100))" "QGEN_PDF_URLS=tcp://127.0.0.1:${PDF_PORT:-7102}")
    edge_env+=("EDGE_QGEN_EVENTS_URLS=tcp://127.0.0.1:$((port + 100))")
  fi
  if [ "$prefix" = EVAL ]; then
    # Job events on RPC port + 100; source text from svc-pdf, question sets from svc-qgen.
    extra=("EVAL_EVENTS_URL=tcp://127.0.0.1:$((port + 100))" "EVAL_PDF_URLS=tcp://127.0.0.1:${PDF_PORT:-7102}"
      "EVAL_QGEN_URLS=tcp://127.0.0.1:${QGEN_PORT:-7104}")
    edge_env+=("EDGE_EVAL_EVENTS_URLS=tcp://127.0.0.1:$((port + 100))")
  elif [ "$prefix" = CHAT ]; then
    # Answer deltas on RPC port + 100; passages from svc-pdf. No LLM_BASE_URL: the offline provider.
    extra=("CHAT_EVENTS_URL=tcp://127.0.0.1:$((port + 100))" "CHAT_PDF_URLS=tcp://127.0.0.1:${PDF_PORT:-7102}")
    edge_env+=("EDGE_CHAT_EVENTS_URLS=tcp://127.0.0.1:$((port + 100))")
  fi
  start "$name" "http://127.0.0.1:$admin/readyz" "tcp://127.0.0.1:$port admin http://127.0.0.1:$admin" \
    env "${prefix}_RPC_URL=tcp://127.0.0.1:$port" "${prefix}_ADMIN_ADDR=127.0.0.1:$admin" "${extra[@]}" "$bin"
  edge_env+=("EDGE_${prefix}_URLS=tcp://127.0.0.1:$port")
done
start edge "http://$EDGE_ADDR/readyz" "http://$EDGE_ADDR" env EDGE_ADDR="$EDGE_ADDR" \
  EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" "${edge_env[@]}" "$BUILD_DIR/edge/edge"

echo "up: postgres  127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, data in $STATE_DIR"
for line in "${report[@]}"; do echo "up: $line"; done
echo "up: ready: http://$EDGE_ADDR (legacy account vsbec/vsbec); logs in $logs"
echo "up: JWT secret in $secret_file; stop with scripts/down.sh"
