#!/usr/bin/env bash
# Benchmark: GET /api/v1/auth/me through the edge to svc-auth (JWT check at the edge, one RPC, a
# session check and user lookup in PostgreSQL) at several connection counts, beside, in the same
# run, the same query alone on PostgreSQL (pgbench -M prepared, 8 clients: the ceiling of the RPC
# path, issue 12), nginx serving a fixed 25-byte JSON response and the edge's own /healthz.
# wrk -t2 -dDURs --latency; prints requests/s, p50 and p99 for each, and the ratios edge/pgbench
# (goal: >= 0.4x with p99 < 10 ms at 100 connections) and edge/nginx.
#   bench/auth_me.sh            (from the repo root; builds what is missing into build/)
# Env: DUR (seconds per run, 10), CONNS (connection counts for /me, "10 100 1000"), BUILD_DIR
# (build), AUTH_WORKERS (svc-auth's default), PERF=1 (perf record -g on svc-auth and on the edge
# during the 100-connection run, reports beside the results). Runs its own PostgreSQL, Redis,
# svc-auth, edge and nginx on private loopback ports in a temporary state dir and stops them at
# the end. Results: bench/results/auth_me-<time>.txt (summary, load average, raw output).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh
# shellcheck source=lib/stack.sh
. bench/lib/stack.sh

DUR=${DUR:-10}
CONNS=${CONNS:-10 100 1000}
PERF=${PERF:-0}
BUILD_DIR=${BUILD_DIR:-$root/build}
PG_PORT=25632 REDIS_PORT=26579 AUTH_PORT=27301 AUTH_ADMIN=29301 EDGE=127.0.0.1:28280 NGINX_PORT=28181
EDGE_ADMIN=127.0.0.1:29380
for tool in wrk nginx curl python3 pgbench psql; do
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

bench_base_start "$state" "$run" "$BUILD_DIR"
proc_start edge "$run" "$state/edge.log" env EDGE_ADDR="$EDGE" EDGE_ADMIN_ADDR="$EDGE_ADMIN" \
  EDGE_AUTH_URLS="tcp://127.0.0.1:$AUTH_PORT" EDGE_RATE_PER_S=0 EDGE_MAX_CONNECTIONS_PER_ADDR=0 \
  "$BUILD_DIR/edge/edge"
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
stamp=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
bench() { # NAME CONNECTIONS URL [wrk args...]
  local name=$1 conns=$2 url=$3
  shift 3
  echo "auth_me: wrk -t2 -c$conns -d${DUR}s $url" >&2
  wrk -t2 -c"$conns" -d"${DUR}s" --latency "$@" "$url" >"$raw/$name.txt" 2>&1
  if grep -q 'Non-2xx' "$raw/$name.txt"; then
    echo "auth_me: the $name run got error responses:" >&2
    cat "$raw/$name.txt" >&2
    exit 1
  fi
  grep 'Socket errors' "$raw/$name.txt" >&2 || true
}
# perf_start NAME: samples NAME's process (user and kernel, call graphs) until perf_stop.
perf_pids=()
perf_start() {
  perf record -g -o "$out/auth_me-$stamp-$1.perf" -p "$(cat "$run/$1.pid")" >/dev/null 2>&1 &
  perf_pids+=($!)
}
perf_stop() {
  local p
  for p in "${perf_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" || true; done
  perf_pids=()
}
# batched: "batches calls" the edge has sent to svc-auth so far (its upstream batching metrics).
batched() {
  curl -fsS "http://$EDGE_ADMIN/metrics" | awk '
    /^edge_upstream_batches_total\{upstream="auth"\}/ { b = $2 }
    /^edge_upstream_batched_calls_total\{upstream="auth"\}/ { c = $2 }
    END { printf "%d %d\n", b, c }'
}
# cost NAME: "cpu_ticks context_switches" of NAME's process so far (all its threads), so each run
# can say what a request cost svc-auth and the edge whatever else the machine was doing.
cost() {
  local pid t sw=0 n
  pid=$(cat "$run/$1.pid")
  t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  for n in $(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { print $2 }'); do sw=$((sw + n)); done
  echo "$t $sw"
}
tick=$(getconf CLK_TCK)
for c in $CONNS; do
  if [ "$PERF" = 1 ] && [ "$c" = 100 ]; then perf_start svc-auth; perf_start edge; fi
  a0=$(cost svc-auth) e0=$(cost edge) b0=$(batched)
  bench "edge_me_$c" "$c" "http://$EDGE/api/v1/auth/me" -H "Authorization: Bearer $token"
  a1=$(cost svc-auth) e1=$(cost edge) b1=$(batched)
  [ "$PERF" = 1 ] && [ "$c" = 100 ] && perf_stop
  n=$(awk '/requests in/ { print $1 }' "$raw/edge_me_$c.txt")
  awk -v n="$n" -v t="$tick" -v a0="$a0" -v a1="$a1" -v e0="$e0" -v e1="$e1" -v b0="$b0" -v b1="$b1" 'BEGIN {
    split(a0, x, " "); split(a1, y, " "); split(e0, u, " "); split(e1, v, " ");
    split(b0, p, " "); split(b1, q, " ");
    printf "per request: svc-auth %.1f us CPU, %.2f context switches; edge %.1f us CPU, %.2f context switches; %.1f calls a batch\n",
           (y[1] - x[1]) * 1e6 / t / n, (y[2] - x[2]) / n, (v[1] - u[1]) * 1e6 / t / n, (v[2] - u[2]) / n,
           (q[1] > p[1] ? (q[2] - p[2]) / (q[1] - p[1]) : 0) }' \
    >"$raw/cost_$c.txt"
done
bench nginx 100 "http://127.0.0.1:$NGINX_PORT/"
bench edge_healthz 100 "http://$EDGE/healthz"

# The same query as auth.Me (svc-auth/store.c auth_store_session_user) for the bench user's
# session; the format's colons are spelt chr(58) since pgbench reads :MI and :SS as variables.
ids=$(psql -At -F ' ' -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres \
  -c "SELECT id, user_id FROM auth.sessions ORDER BY created_at DESC LIMIT 1")
read -r sid uid <<<"$ids"
cat >"$state/me.sql" <<'SQL'
SELECT u.id::text, u.email, u.name, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"'), '' FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE s.id = :sid::uuid AND s.user_id = :uid::uuid AND s.revoked_at IS NULL AND s.expires_at > now();
SQL
echo "auth_me: pgbench -M prepared -c 8 -j 2 -T $DUR (auth.Me's query)" >&2
pgbench -n -M prepared -c 8 -j 2 -T "$DUR" -D sid="$sid" -D uid="$uid" -f "$state/me.sql" \
  -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$raw/pgbench.txt" 2>&1 ||
  { cat "$raw/pgbench.txt" >&2; exit 1; }
grep -q '^number of failed transactions: 0' "$raw/pgbench.txt" ||
  grep -q 'number of transactions actually processed' "$raw/pgbench.txt" ||
  { cat "$raw/pgbench.txt" >&2; exit 1; }
pg_tps=$(awk '/^tps/ { printf "%.0f", $3 }' "$raw/pgbench.txt")
pg_lat=$(awk '/^latency average/ { print $4 }' "$raw/pgbench.txt")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# wrk -> "requests/s p50_ms p99_ms errors" (latencies come as 512.00us, 1.20ms or 1.02s).
parse() {
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
       /Requests\/sec/ { r = $2 } /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
       /Socket errors/ { gsub(",", ""); e = $4 + $6 + $8 + $10 }
       END { printf "%.0f %.3f %.3f %d\n", r, p50, p99, e }' "$1"
}

result=$out/auth_me-$stamp.txt
{
  echo "auth_me $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, wrk -t2 -d${DUR}s, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "load average at start: $load_start, at end: $load_end"
  printf '%-44s %10s %9s %9s %6s\n' "target" "requests/s" "p50 ms" "p99 ms" "errors"
  for c in $CONNS; do
    read -r r p50 p99 e < <(parse "$raw/edge_me_$c.txt")
    printf '%-44s %10s %9s %9s %6s\n' "edge GET /api/v1/auth/me, $c connections" "$r" "$p50" "$p99" "$e"
    sed 's/^/  /' "$raw/cost_$c.txt"
  done
  read -r r p50 p99 e < <(parse "$raw/nginx.txt")
  printf '%-44s %10s %9s %9s %6s\n' "nginx fixed 25-byte JSON, 100 connections" "$r" "$p50" "$p99" "$e"
  nr=$r
  read -r r p50 p99 e < <(parse "$raw/edge_healthz.txt")
  printf '%-44s %10s %9s %9s %6s\n' "edge alone GET /healthz, 100 connections" "$r" "$p50" "$p99" "$e"
  printf '%-44s %10s %9s %9s %6s\n' "pgbench auth.Me query, 8 clients" "$pg_tps" "avg $pg_lat" "-" "-"
  if [ -f "$raw/edge_me_100.txt" ]; then
    read -r r p50 p99 e < <(parse "$raw/edge_me_100.txt")
    awk -v a="$r" -v b="$pg_tps" -v n="$nr" -v p="$p99" 'BEGIN {
      printf "/me at 100 connections: %.3fx pgbench, %.3fx nginx, p99 %.3f ms: goal (>= 0.4x pgbench, p99 < 10 ms) %s\n",
             a / b, a / n, p, (a / b >= 0.4 && p < 10) ? "met" : "missed" }'
  fi
} | tee "$result"
for f in "$raw"/*.txt; do
  printf '\n---- %s\n' "$(basename "$f" .txt)"
  cat "$f"
done >>"$result"
echo "auth_me: results in ${result#"$root"/}"
