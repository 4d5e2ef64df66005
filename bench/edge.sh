#!/usr/bin/env bash
# Benchmark: the edge's HTTP face beside nginx and haproxy, in one run on this machine.
#   bench/edge.sh            (from anywhere; builds what is missing into BUILD_DIR)
# Everything is measured with wrk -t2 --latency, DUR seconds a run (10), CONNS connections (50)
# unless said otherwise; each line gives requests/s, p50 and p99:
#   1. a fixed response: nginx (2 workers, fixed 25-byte JSON) vs the edge's own GET /healthz;
#   2. as an HTTP reverse proxy in front of the same backend (that nginx, fixed 25-byte body):
#      the backend direct, nginx proxy_pass with an upstream keepalive pool (2 workers), haproxy
#      with http-reuse always (2 threads), and the edge with EDGE_FRONTEND_URL at the backend
#      (every non-/api path goes there: edge/frontend.c, whatever is on the checked-out tree);
#   3. GET /api/v1/auth/me with a bearer token through the edge to svc-auth (JWT check, one RPC,
#      one PostgreSQL query) at 10, 100 and 1,000 connections; and, when pgbench is installed,
#      that query alone on PostgreSQL (pgbench -M prepared, 8 clients, 2 threads), its ceiling.
# The goal (issue 9): the edge >= 0.8x nginx's requests/s with a p99 within 1 ms of nginx's, for
# the fixed response and as a proxy; the ratios and the verdicts are printed.
# The edge runs with EDGE_RATE_PER_S=0 and EDGE_MAX_CONNECTIONS_PER_ADDR=0 (wrk is one address),
# its default EDGE_THREADS (one per core) and LOG_LEVEL=warn; it still writes one access-log line
# per request (to a file), which nginx and haproxy do not.
# Env: DUR, CONNS, BUILD_DIR (build), PERF=1 (perf record -g on the edge while it proxies, into
# bench/results/edge-proxy-<time>.perf), KEEP=1 (keep the state dir and PostgreSQL's files, logs
# included, to look at afterwards). Private loopback ports 31400-31499 (the test fixtures use
# 25xxx-29xxx, scripts/up.sh its defaults), a temporary state dir, everything stopped at the end.
# Results: bench/results/edge-<time>.txt (the summary, the load average, wrk's raw output).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh
# shellcheck source=lib/stack.sh
. bench/lib/stack.sh
# shellcheck source=lib/wrk.sh
. bench/lib/wrk.sh

DUR=${DUR:-10}
CONNS=${CONNS:-50}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
PG_PORT=31432 REDIS_PORT=31479 AUTH_PORT=31401 AUTH_ADMIN=31402 EDGE=127.0.0.1:31480
BACKEND_PORT=31481 NGINX_PROXY_PORT=31482 HAPROXY_PORT=31483
for tool in wrk nginx haproxy curl python3 psql; do
  command -v "$tool" >/dev/null || { echo "edge.sh: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(ulimit -n)" -ge 2100 ] || ulimit -n 4096 ||
  { echo "edge.sh: 1,000 connections need more open files than ulimit -n $(ulimit -n)" >&2; exit 1; }

BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth edge >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench-edge.XXXXXX)
run=$state/run raw=$state/wrk
mkdir -p "$raw"

cleanup() {
  proc_stop edge "$run"
  proc_stop haproxy "$run"
  proc_stop nginx-proxy "$run"
  proc_stop nginx-backend "$run"
  proc_stop svc-auth "$run"
  redis_stop "$state"
  pg_stop "$state" immediate
  [ -n "${KEEP:-}" ] && return
  rm -rf "$(pg_home "$state")" "$state"
}
trap cleanup EXIT

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
bench_base_start "$state" "$run" "$BUILD_DIR"

# The backend (also "nginx fixed response"), then nginx and haproxy as proxies in front of it.
body='{"status":"ok","n":12345}'
nginx_conf "$state/nginx-backend" "$BACKEND_PORT" \
  "location / { default_type application/json; return 200 '$body'; }"
nginx_start nginx-backend "$state/nginx-backend" "$run"
nginx_conf "$state/nginx-proxy" "$NGINX_PROXY_PORT" \
  'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }' \
  "upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }"
nginx_start nginx-proxy "$state/nginx-proxy" "$run"
cat >"$state/haproxy.cfg" <<HAP
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  server backend 127.0.0.1:$BACKEND_PORT
HAP
proc_start haproxy "$run" "$state/haproxy.log" haproxy -db -f "$state/haproxy.cfg"
proc_start edge "$run" "$state/edge.log" env EDGE_ADDR="$EDGE" \
  EDGE_AUTH_URLS="tcp://127.0.0.1:$AUTH_PORT" EDGE_FRONTEND_URL="http://127.0.0.1:$BACKEND_PORT" \
  EDGE_RATE_PER_S=0 EDGE_MAX_CONNECTIONS_PER_ADDR=0 "$BUILD_DIR/edge/edge"
for url in "http://127.0.0.1:$BACKEND_PORT/" "http://127.0.0.1:$NGINX_PROXY_PORT/" \
  "http://127.0.0.1:$HAPROXY_PORT/" "http://$EDGE/readyz"; do
  wait_http "$url" 60 || { tail -n 20 "$state"/*.log "$state"/nginx-*/error.log >&2; exit 1; }
done
for url in "http://127.0.0.1:$NGINX_PROXY_PORT/" "http://127.0.0.1:$HAPROXY_PORT/" "http://$EDGE/"; do
  [ "$(curl -s "$url")" = "$body" ] || { echo "edge.sh: $url does not pass the backend's body" >&2; exit 1; }
done

# A user of its own and an access token.
email="bench-$(date +%s)-$RANDOM@example.com"
cred="{\"email\":\"$email\",\"password\":\"benchmark password\"}"
curl -sf -H 'Content-Type: application/json' -d "$cred" "http://$EDGE/api/v1/auth/register" >/dev/null
token=$(curl -sf -H 'Content-Type: application/json' -d "$cred" "http://$EDGE/api/v1/auth/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$EDGE/api/v1/auth/me")" = 200 ] ||
  { echo "edge.sh: GET /api/v1/auth/me does not answer 200" >&2; exit 1; }

# name|connections|url|label; the order is the table's.
runs=(
  "nginx_fixed|$CONNS|http://127.0.0.1:$BACKEND_PORT/|nginx fixed 25-byte JSON (= the backend)"
  "edge_healthz|$CONNS|http://$EDGE/healthz|edge GET /healthz"
  "nginx_proxy|$CONNS|http://127.0.0.1:$NGINX_PROXY_PORT/|nginx proxy_pass, keepalive 64"
  "haproxy_proxy|$CONNS|http://127.0.0.1:$HAPROXY_PORT/|haproxy, http-reuse always"
  "edge_proxy|$CONNS|http://$EDGE/|edge -> backend (EDGE_FRONTEND_URL)"
  "edge_me_10|10|http://$EDGE/api/v1/auth/me|edge GET /api/v1/auth/me, 10 conns"
  "edge_me_100|100|http://$EDGE/api/v1/auth/me|edge GET /api/v1/auth/me, 100 conns"
  "edge_me_1000|1000|http://$EDGE/api/v1/auth/me|edge GET /api/v1/auth/me, 1000 conns"
)
declare -A fig
for r in "${runs[@]}"; do
  IFS='|' read -r name conns url _ <<<"$r"
  args=()
  [[ $name == edge_me_* ]] && args=(-H "Authorization: Bearer $token")
  perf_pid=""
  if [ "${PERF:-0}" = 1 ] && [ "$name" = edge_proxy ]; then
    perf record -g -o "$out/edge-proxy-$(date -u +%Y%m%dT%H%M%SZ).perf" -p "$(cat "$run/edge.pid")" \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  wrk_run "$raw/$name.txt" "$conns" "$DUR" "$url" "${args[@]}"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" || true; fi
  fig[$name]=$(wrk_figures "$raw/$name.txt")
  sleep 1 # let closed connections settle before the next target
done

# pgbench: auth.Me's query alone, the ceiling of the RPC path (issue 12).
pg_line=""
if command -v pgbench >/dev/null; then
  ids=$(psql -At -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres -F ' ' \
    -c "SELECT id, user_id FROM auth.sessions ORDER BY created_at DESC LIMIT 1")
  read -r sid uid <<<"$ids"
  # svc-auth/store.c's text, but pgbench would take the format's :MI and :SS for variables.
  cat >"$state/me.sql" <<'SQL'
SELECT u.id::text, u.email, u.name, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"'), '' FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE s.id = :sid::uuid AND s.user_id = :uid::uuid AND s.revoked_at IS NULL AND s.expires_at > now();
SQL
  echo "bench: pgbench -M prepared -c8 -j2 -T$DUR (auth.Me's query)" >&2
  pgbench -n -M prepared -c 8 -j 2 -T "$DUR" -D sid="$sid" -D uid="$uid" -f "$state/me.sql" \
    -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$raw/pgbench.txt" 2>&1
  pg_line=$(awk '/^latency average/ { lat = $4 } /^tps/ { tps = $3 }
    END { printf "%-44s %10.0f %9s %9s %6s", "pgbench auth.Me query, 8 clients (avg " lat " ms)", tps, "-", "-", "-" }' \
    "$raw/pgbench.txt")
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# verdict NAME BASE: "0.xx x requests/s, p99 +y ms: goal met|missed".
verdict() {
  awk -v e="${fig[$1]}" -v n="${fig[$2]}" 'BEGIN {
    split(e, x, " "); split(n, y, " ");
    r = x[1] / y[1]; d = x[3] - y[3];
    printf "%.3fx requests/s, p99 %+.3f ms: goal (>= 0.8x, p99 <= +1 ms) %s\n", r, d,
           (r >= 0.8 && d <= 1.0 && x[4] == 0) ? "met" : "missed" }'
}

result=$out/edge-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "edge.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
  echo "wrk -t2 -d${DUR}s --latency; load average before $load_start, after $load_end"
  printf '%-44s %10s %9s %9s %6s\n' target requests/s "p50 ms" "p99 ms" errors
  for r in "${runs[@]}"; do
    IFS='|' read -r name _ _ label <<<"$r"
    read -r rps p50 p99 err <<<"${fig[$name]}"
    printf '%-44s %10s %9s %9s %6s\n' "$label" "$rps" "$p50" "$p99" "$err"
  done
  [ -n "$pg_line" ] && echo "$pg_line"
  echo "edge /healthz vs nginx fixed:   $(verdict edge_healthz nginx_fixed)"
  echo "edge proxy vs nginx proxy_pass: $(verdict edge_proxy nginx_proxy)"
  echo "edge proxy vs haproxy:          $(verdict edge_proxy haproxy_proxy)"
} | tee "$result"
for r in "${runs[@]}"; do
  name=${r%%|*}
  printf '\n---- wrk %s\n' "$name"
  cat "$raw/$name.txt"
done >>"$result"
[ -f "$raw/pgbench.txt" ] && { printf '\n---- pgbench\n'; cat "$raw/pgbench.txt"; } >>"$result"
echo "edge.sh: results in ${result#"$root"/}"
