#!/usr/bin/env bash
# THE first README command: installs what is missing (as root), builds, and starts the whole
# system locally in the background: PostgreSQL and Redis (own data under $STATE_DIR), every
# service that is built, and the edge on $EDGE_ADDR. Idempotent: what runs already is kept.
# Stop everything with scripts/down.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=lib/servers.sh
. scripts/lib/servers.sh

STATE_DIR=${STATE_DIR:-$root/.state}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
EDGE_ADDR=${EDGE_ADDR:-127.0.0.1:8080}
AUTH_PORT=${AUTH_PORT:-7101}
PDF_PORT=${PDF_PORT:-7102}
BUILD_DIR=${BUILD_DIR:-$root/build-release}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
run="$STATE_DIR/run" logs="$STATE_DIR/logs"
mkdir -p "$run" "$logs"

if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else bash scripts/install-deps.sh || true; fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target svc-auth edge $( [ -f svc-pdf/main.c ] && echo svc-pdf ) >/dev/null

pg_start "$STATE_DIR" "$PG_PORT"
redis_start "$STATE_DIR" "$REDIS_PORT"

# A random signing secret on first start, kept across restarts.
secret_file="$STATE_DIR/jwt.secret"
if [ ! -s "$secret_file" ]; then
  (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$secret_file")
fi
JWT_SECRET=$(cat "$secret_file")
export JWT_SECRET
export DATABASE_URL="host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres"
export REDIS_HOST=127.0.0.1 REDIS_PORT

started=()
AUTH_RPC_URL="tcp://127.0.0.1:$AUTH_PORT" AUTH_ADMIN_ADDR="127.0.0.1:$((AUTH_PORT + 2000))" \
  proc_start svc-auth "$run" "$logs/svc-auth.log" "$BUILD_DIR/svc-auth/svc-auth"
started+=("svc-auth  tcp://127.0.0.1:$AUTH_PORT  admin http://127.0.0.1:$((AUTH_PORT + 2000))")
pdf_urls=""
if [ -x "$BUILD_DIR/svc-pdf/svc-pdf" ]; then
  PDF_RPC_URL="tcp://127.0.0.1:$PDF_PORT" PDF_ADMIN_ADDR="127.0.0.1:$((PDF_PORT + 2000))" \
    PDF_DATA_DIR="$STATE_DIR/pdfs" \
    proc_start svc-pdf "$run" "$logs/svc-pdf.log" "$BUILD_DIR/svc-pdf/svc-pdf"
  pdf_urls="tcp://127.0.0.1:$PDF_PORT"
  started+=("svc-pdf   tcp://127.0.0.1:$PDF_PORT  admin http://127.0.0.1:$((PDF_PORT + 2000))")
fi
EDGE_ADDR="$EDGE_ADDR" EDGE_AUTH_URLS="tcp://127.0.0.1:$AUTH_PORT" EDGE_PDF_URLS="$pdf_urls" \
  proc_start edge "$run" "$logs/edge.log" "$BUILD_DIR/edge/edge"

if ! wait_http "http://$EDGE_ADDR/readyz" 1200; then
  echo "up.sh: the edge did not become ready; last log lines:" >&2
  for f in "$logs"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
  exit 1
fi
echo "up: PostgreSQL 127.0.0.1:$PG_PORT and Redis 127.0.0.1:$REDIS_PORT (data in $STATE_DIR)"
for s in "${started[@]}"; do echo "up: $s"; done
echo "up: edge      http://$EDGE_ADDR  (ready; legacy account vsbec/vsbec)"
echo "up: logs in $logs; stop with scripts/down.sh"
