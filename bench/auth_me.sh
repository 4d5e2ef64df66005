#!/usr/bin/env bash
# Benchmark: GET /api/v1/auth/me through edge -> svc-auth (JWT check at the edge, an RPC, a session
# check and a user lookup in PostgreSQL), beside nginx serving a fixed 25-byte JSON response on the
# same machine in the same run. wrk -t2 -c50; prints requests/s, p50 and p99 for both and the ratio.
# Runs its own stack on private ports (state in bench/results/auth-state); stops it at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/servers.sh
DUR=${DUR:-10}
out=bench/results
mkdir -p "$out"
state=$(mkdir -p "$out/auth-state" && cd "$out/auth-state" && pwd)
build=$root/build-release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target svc-auth edge >/dev/null

PGP=25632 RP=26579 EDGE=127.0.0.1:28280 NGINX_PORT=28281
cleanup() {
  proc_stop edge "$state/run"; proc_stop auth "$state/run"
  [ -f "$state/nginx.pid" ] && kill "$(cat "$state/nginx.pid")" 2>/dev/null || true
  redis_stop "$state"; pg_stop "$state"
}
trap cleanup EXIT
pg_start "$state" $PGP
redis_start "$state" $RP
export JWT_SECRET=bench-secret-bench-secret-bench-secret-0123
export DATABASE_URL="host=127.0.0.1 port=$PGP dbname=postgres user=postgres" REDIS_PORT=$RP
export LOG_LEVEL=warn
AUTH_RPC_URL=tcp://127.0.0.1:27301 AUTH_ADMIN_ADDR=127.0.0.1:29301 AUTH_WORKERS=4 \
  proc_start auth "$state/run" "$state/auth.log" "$build/svc-auth/svc-auth"
wait_http http://127.0.0.1:29301/readyz 600
EDGE_ADDR=$EDGE EDGE_AUTH_URLS=tcp://127.0.0.1:27301 EDGE_RATE_PER_S=0 \
  proc_start edge "$state/run" "$state/edge.log" "$build/edge/edge"
wait_http "http://$EDGE/readyz" 600

email="bench-$RANDOM$RANDOM@example.com"
curl -sf -XPOST "http://$EDGE/api/v1/auth/register" -d "{\"email\":\"$email\",\"password\":\"benchmark!\"}" >/dev/null
token=$(curl -sf -XPOST "http://$EDGE/api/v1/auth/login" -d "{\"email\":\"$email\",\"password\":\"benchmark!\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cat >"$state/nginx.conf" <<NGX
worker_processes 2;
pid $state/nginx.pid;
error_log $state/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type application/json; return 200 '{"status":"ok","n":12345}'; }
  }
}
NGX
nginx -c "$state/nginx.conf" -g 'daemon on;'
wait_http "http://127.0.0.1:$NGINX_PORT/" 100

run_wrk() { wrk -t2 -c50 -d"${DUR}s" --latency "$@" 2>&1; }
parse() { # file -> "rps p50_ms p99_ms"
  awk '/Requests\/sec/ {r=$2}
       /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
       END {print r, p50, p99}' "$1"
}
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s/,"",v); print v*1000} }'; }

run_wrk -H "Authorization: Bearer $token" "http://$EDGE/api/v1/auth/me" >"$out/auth_me.edge.txt"
run_wrk "http://127.0.0.1:$NGINX_PORT/" >"$out/auth_me.nginx.txt"
run_wrk "http://$EDGE/healthz" >"$out/auth_me.edge_local.txt"
grep -q 'Non-2xx' "$out/auth_me.edge.txt" && { echo "bench: edge answered non-2xx:"; cat "$out/auth_me.edge.txt"; exit 1; }

read -r er e50 e99 < <(parse "$out/auth_me.edge.txt")
read -r nr n50 n99 < <(parse "$out/auth_me.nginx.txt")
read -r lr l50 l99 < <(parse "$out/auth_me.edge_local.txt")
printf '%-34s %12s %10s %10s\n' "target (wrk -t2 -c50, ${DUR}s)" "requests/s" "p50 ms" "p99 ms"
printf '%-34s %12.0f %10.3f %10.3f\n' "edge -> svc-auth GET /auth/me" "$er" "$(to_ms "$e50")" "$(to_ms "$e99")"
printf '%-34s %12.0f %10.3f %10.3f\n' "edge alone GET /healthz" "$lr" "$(to_ms "$l50")" "$(to_ms "$l99")"
printf '%-34s %12.0f %10.3f %10.3f\n' "nginx fixed 25-byte JSON" "$nr" "$(to_ms "$n50")" "$(to_ms "$n99")"
awk -v a="$er" -v b="$nr" -v c="$lr" 'BEGIN{printf "ratio edge->svc-auth / nginx requests/s: %.3f   edge alone / nginx: %.3f\n", a/b, c/b}'
