#!/usr/bin/env bash
# ctest fixture `gateway`: the edge as a gateway for test/e2e/test_gateway.c (issue #12), beside
# the stack (its PostgreSQL, Redis, JWT secret and old backend on 28095):
#   svc-auth replicas 0-2  tcp://127.0.0.1:27121, 27131, 27141 (admin 29121, 29131, 29141)
#   gateway edge           http://127.0.0.1:28084 (admin 29194): EDGE_AUTH_URLS = replicas 0-2 and
#                          tcp://127.0.0.1:27151, where the test starts a replica failing every call
#   fallback edge          http://127.0.0.1:28085 (admin 29195): svc-auth at tcp://127.0.0.1:27161
#                          alone (replica 4, or the test's failing stand-in there, started by the
#                          test), legacy_verify migrating with EDGE_LEGACY_FALLBACK=1 and share 0
# usage: gateway.sh start|stop STATE_DIR BUILD_DIR
#        gateway.sh kill-auth|start-auth STATE_DIR BUILD_DIR N   (N: 0, 1, 2 or 4; kill = SIGKILL)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/servers.sh
. "$here/../../scripts/lib/servers.sh"
cmd=$1
state=$(mkdir -p "$2" && cd "$2" && pwd)
build=$(cd "$3" && pwd)
run="$state/run" logs="$state/logs"
mkdir -p "$run" "$logs"

secret_file="$state/jwt.secret" # written by stack.sh, which starts first
[ -s "$secret_file" ] || { echo "$0: no $secret_file: start the stack first" >&2; exit 1; }
export LOG_LEVEL=${LOG_LEVEL:-info}
export DATABASE_URL="host=127.0.0.1 port=${CM_TEST_PG_PORT:-25432} dbname=postgres user=postgres"
export REDIS_HOST=127.0.0.1 REDIS_PORT=${CM_TEST_REDIS_PORT:-26379}
JWT_SECRET=$(cat "$secret_file")
export JWT_SECRET
export AUTH_PWHASH_OPSLIMIT=1 AUTH_PWHASH_MEMLIMIT_KIB=8192 AUTH_THROTTLE_ADDR_MAX=1000 AUTH_WORKERS=4

start_auth() {
  local i=$1 port=$((27121 + 10 * $1)) admin=$((29121 + 10 * $1))
  AUTH_RPC_URL="tcp://127.0.0.1:$port" AUTH_ADMIN_ADDR="127.0.0.1:$admin" \
    proc_start "gwauth$i" "$run" "$logs/gwauth$i.log" "$build/svc-auth/svc-auth"
  wait_http "http://127.0.0.1:$admin/readyz" 60 || { tail -n 30 "$logs/gwauth$i.log" >&2; return 1; }
}

replica_arg() {
  case ${1:-} in 0 | 1 | 2 | 4) ;; *) echo "$0: $cmd needs replica 0, 1, 2 or 4" >&2; exit 2 ;; esac
}

case $cmd in
  start)
    start_auth 0
    start_auth 1
    start_auth 2
    EDGE_ADDR=127.0.0.1:28084 EDGE_ADMIN_ADDR=127.0.0.1:29194 \
      EDGE_AUTH_URLS="tcp://127.0.0.1:27121,tcp://127.0.0.1:27131,tcp://127.0.0.1:27141,tcp://127.0.0.1:27151" \
      EDGE_RATE_PER_S=0 EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" \
      proc_start edge_gateway "$run" "$logs/edge_gateway.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28084/readyz" 60 || { tail -n 30 "$logs/edge_gateway.log" >&2; exit 1; }
    # No replica behind this one yet: /healthz, not /readyz.
    EDGE_ADDR=127.0.0.1:28085 EDGE_ADMIN_ADDR=127.0.0.1:29195 EDGE_AUTH_URLS=tcp://127.0.0.1:27161 \
      EDGE_LEGACY_BACKEND_URL=http://127.0.0.1:28095 EDGE_LEGACY_SHARE=0 EDGE_LEGACY_FALLBACK=1 \
      EDGE_LEGACY_ROUTES=legacy_verify EDGE_RATE_PER_S=0 \
      EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" \
      proc_start edge_fallback "$run" "$logs/edge_fallback.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28085/healthz" 60 || { tail -n 30 "$logs/edge_fallback.log" >&2; exit 1; }
    ;;
  stop)
    proc_stop edge_gateway "$run"
    proc_stop edge_fallback "$run"
    for i in 0 1 2 4; do proc_stop "gwauth$i" "$run"; done
    ;;
  kill-auth)
    replica_arg "${4:-}"
    proc_stop "gwauth$4" "$run" KILL
    ;;
  start-auth)
    replica_arg "${4:-}"
    start_auth "$4"
    ;;
  *) echo "usage: $0 start|stop|kill-auth|start-auth STATE_DIR BUILD_DIR [replica]" >&2; exit 2 ;;
esac
