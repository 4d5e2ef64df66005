#!/usr/bin/env bash
# Benchmark: GET /api/v1/auth/me through the edge to svc-auth (JWT check at the edge, one RPC, a
# session check and user lookup in PostgreSQL), beside nginx serving a fixed 25-byte JSON response
# on the same machine in the same run. wrk -t2 -c50 -d10s --latency against each; prints
# requests/s, p50 and p99 for both (and for the edge's own /healthz) and the ratio edge/nginx.
#   bench/auth_me.sh            (from the repo root; builds what is missing into build/)
# Env: DUR (seconds per run, 10), BUILD_DIR (build). Runs its own PostgreSQL, Redis, svc-auth,
# edge and nginx on private loopback ports in a temporary state dir and stops them at the end.
# Results: bench/results/auth_me-<time>.txt (summary and wrk's raw output).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh

DUR=${DUR:-10}
BUILD_DIR=${BUILD_DIR:-$root/build}
PG_PORT=25632 REDIS_PORT=26579 AUTH_PORT=27301 AUTH_ADMIN=29301 EDGE=127.0.0.1:28280 NGINX_PORT=28181
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "auth_me: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done

BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth edge >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench.XXXXXX)
run=$state/run

cleanup() {
  proc_stop nginx "$run"
  proc_stop edge "$run"
  proc_stop svc-auth "$run"
  redis_stop "$state"
  pg_stop "$state" immediate
  rm -rf "$state"
}
trap cleanup EXIT

pg_start "$state" "$PG_PORT"
redis_start "$state" "$REDIS_PORT"
export LOG_LEVEL=warn
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
export JWT_SECRET
export DATABASE_URL="host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres"
export REDIS_HOST=127.0.0.1 REDIS_PORT
proc_start svc-auth "$run" "$state/svc-auth.log" env AUTH_RPC_URL="tcp://127.0.0.1:$AUTH_PORT" \
  AUTH_ADMIN_ADDR="127.0.0.1:$AUTH_ADMIN" "$BUILD_DIR/svc-auth/svc-auth"
wait_http "http://127.0.0.1:$AUTH_ADMIN/readyz" 60 || { tail -n 20 "$state/svc-auth.log" >&2; exit 1; }
proc_start edge "$run" "$state/edge.log" env EDGE_ADDR="$EDGE" \
  EDGE_AUTH_URLS="tcp://127.0.0.1:$AUTH_PORT" EDGE_RATE_PER_S=0 "$BUILD_DIR/edge/edge"
wait_http "http://$EDGE/readyz" 60 || { tail -n 20 "$state/edge.log" >&2; exit 1; }

# nginx: 2 workers, no access log, one fixed 25-byte JSON body; all its files in the state dir.
mkdir -p "$state/nginx"
cat >"$state/nginx/nginx.conf" <<NGX
worker_processes 2;
pid $state/nginx/nginx.pid;
error_log $state/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $state/nginx/body;
  proxy_temp_path $state/nginx/proxy;
  fastcgi_temp_path $state/nginx/fastcgi;
  uwsgi_temp_path $state/nginx/uwsgi;
  scgi_temp_path $state/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type application/json; return 200 '{"status":"ok","n":12345}'; }
  }
}
NGX
proc_start nginx "$run" "$state/nginx/stderr.log" \
  nginx -p "$state/nginx" -e "$state/nginx/error.log" -c "$state/nginx/nginx.conf" -g 'daemon off;'
wait_http "http://127.0.0.1:$NGINX_PORT/" 10 || { cat "$state/nginx/error.log" >&2; exit 1; }
[ "$(curl -s "http://127.0.0.1:$NGINX_PORT/" | wc -c)" -eq 25 ] || { echo "auth_me: nginx body is not 25 bytes" >&2; exit 1; }

# A user of its own and an access token.
email="bench-$(date +%s)-$RANDOM@example.com"
body="{\"email\":\"$email\",\"password\":\"benchmark password\"}"
curl -sf -H 'Content-Type: application/json' -d "$body" "http://$EDGE/api/v1/auth/register" >/dev/null
token=$(curl -sf -H 'Content-Type: application/json' -d "$body" "http://$EDGE/api/v1/auth/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$EDGE/api/v1/auth/me")" = 200 ] ||
  { echo "auth_me: GET /api/v1/auth/me does not answer 200" >&2; exit 1; }

raw=$state/wrk
mkdir -p "$raw"
bench() { # NAME URL [wrk args...]
  local name=$1 url=$2
  shift 2
  echo "auth_me: wrk -t2 -c50 -d${DUR}s $url" >&2
  wrk -t2 -c50 -d"${DUR}s" --latency "$@" "$url" >"$raw/$name.txt" 2>&1
  if grep -q 'Non-2xx' "$raw/$name.txt"; then
    echo "auth_me: the $name run got error responses:" >&2
    cat "$raw/$name.txt" >&2
    exit 1
  fi
  grep 'Socket errors' "$raw/$name.txt" >&2 || true
}
bench edge_me "http://$EDGE/api/v1/auth/me" -H "Authorization: Bearer $token"
bench nginx "http://127.0.0.1:$NGINX_PORT/"
bench edge_healthz "http://$EDGE/healthz"

# wrk -> "requests/s p50_ms p99_ms" (latencies come as 512.00us, 1.20ms or 1.02s).
parse() {
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
       /Requests\/sec/ { r = $2 } /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
       END { printf "%.0f %.3f %.3f\n", r, p50, p99 }' "$1"
}
read -r er e50 e99 < <(parse "$raw/edge_me.txt")
read -r nr n50 n99 < <(parse "$raw/nginx.txt")
read -r hr h50 h99 < <(parse "$raw/edge_healthz.txt")

result=$out/auth_me-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "auth_me $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, wrk -t2 -c50 -d${DUR}s, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  printf '%-36s %12s %9s %9s\n' "target" "requests/s" "p50 ms" "p99 ms"
  printf '%-36s %12s %9s %9s\n' "edge -> svc-auth GET /api/v1/auth/me" "$er" "$e50" "$e99"
  printf '%-36s %12s %9s %9s\n' "nginx fixed 25-byte JSON" "$nr" "$n50" "$n99"
  printf '%-36s %12s %9s %9s\n' "edge alone GET /healthz" "$hr" "$h50" "$h99"
  awk -v a="$er" -v b="$nr" -v c="$hr" \
    'BEGIN { printf "ratio edge/nginx requests/s: %.3f (edge alone /healthz: %.3f)\n", a / b, c / b }'
} | tee "$result"
for f in edge_me nginx edge_healthz; do
  printf '\n---- wrk %s\n' "$f"
  cat "$raw/$f.txt"
done >>"$result"
echo "auth_me: results in ${result#"$root"/}"
