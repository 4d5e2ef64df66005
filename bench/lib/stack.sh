# shellcheck shell=bash
# The base every HTTP benchmark stands on (bench/edge.sh, auth_me.sh, upload.sh). Sourced after
# scripts/lib/servers.sh.
#   bench_base_start STATE RUN BUILD_DIR  PostgreSQL on $PG_PORT and Redis on $REDIS_PORT in
#       STATE; exports what every service reads (JWT_SECRET, a fresh one; DATABASE_URL;
#       REDIS_HOST/PORT; LOG_LEVEL=warn unless set); starts svc-auth on $AUTH_PORT (admin
#       $AUTH_ADMIN) with its pid in RUN and waits until it is ready. Exits on failure.

bench_base_start() {
  local state=$1 run=$2 build=$3
  pg_start "$state" "$PG_PORT"
  redis_start "$state" "$REDIS_PORT"
  export LOG_LEVEL=${LOG_LEVEL:-warn}
  JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
  export JWT_SECRET
  export DATABASE_URL="host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres"
  export REDIS_HOST=127.0.0.1 REDIS_PORT
  proc_start svc-auth "$run" "$state/svc-auth.log" env LOG_LEVEL=warn \
    AUTH_RPC_URL="tcp://127.0.0.1:$AUTH_PORT" AUTH_ADMIN_ADDR="127.0.0.1:$AUTH_ADMIN" \
    "$build/svc-auth/svc-auth"
  wait_http "http://127.0.0.1:$AUTH_ADMIN/readyz" 60 || { tail -n 20 "$state/svc-auth.log" >&2; exit 1; }
}
