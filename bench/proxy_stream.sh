#!/usr/bin/env bash
# Benchmark: a large page through the edge's HTTP proxy (streamed answers, issue 9) beside nginx
# `proxy_pass` in front of the same backend, in one run.
#   bench/proxy_stream.sh      (from anywhere; builds the edge if missing into BUILD_DIR)
# The backend is nginx serving a SIZE_MB file (64) from disk; in front of it nginx `proxy_pass`
# (keepalive, its default buffering: memory, then temp files, sent on as they fill) and the edge
# (EDGE_FRONTEND_URL at the backend: answers over 64 KiB are streamed, at most 256 KiB held each).
# For each of them RUNS downloads one after the other (7) with curl: time to the first byte and
# to the last, medians; then PARALLEL downloads at once (4), and the edge's resident memory
# before and at its peak (VmHWM). Prints the ratios edge / nginx for both times.
# Env: SIZE_MB, RUNS, PARALLEL, BUILD_DIR (build). Private loopback ports 31600-31699, a temporary
# state dir, everything stopped at the end. Results: bench/results/proxy-stream-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh
# shellcheck source=lib/wrk.sh
. bench/lib/wrk.sh

SIZE_MB=${SIZE_MB:-64}
RUNS=${RUNS:-7}
PARALLEL=${PARALLEL:-4}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
BACKEND_PORT=31681 NGINX_PROXY_PORT=31682 EDGE=127.0.0.1:31680
for tool in nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "proxy_stream.sh: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done
BUILD_DIR=$BUILD_DIR bash scripts/build.sh edge >/dev/null
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench-stream.XXXXXX)
run=$state/run
mkdir -p "$run" "$state/www"
chmod 755 "$state" "$state/www" # nginx's workers (nobody) read the file

cleanup() {
  proc_stop edge "$run"
  proc_stop nginx-proxy "$run"
  proc_stop nginx-backend "$run"
  rm -rf "$state"
}
trap cleanup EXIT

head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$state/www/big.bin"
chmod 644 "$state/www/big.bin"
echo ok >"$state/www/ok.txt"
nginx_conf "$state/nginx-backend" "$BACKEND_PORT" "location / { root $state/www; }"
nginx_start nginx-backend "$state/nginx-backend" "$run"
nginx_conf "$state/nginx-proxy" "$NGINX_PROXY_PORT" \
  'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }' \
  "upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }"
nginx_start nginx-proxy "$state/nginx-proxy" "$run"
# The edge needs a token key and an auth upstream to start; nothing here calls svc-auth.
proc_start edge "$run" "$state/edge.log" env LOG_LEVEL=warn EDGE_ADDR="$EDGE" \
  JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" \
  EDGE_AUTH_URLS=tcp://127.0.0.1:31699 EDGE_FRONTEND_URL="http://127.0.0.1:$BACKEND_PORT" \
  EDGE_RATE_PER_S=0 "$BUILD_DIR/edge/edge"
for url in "http://127.0.0.1:$BACKEND_PORT/ok.txt" "http://127.0.0.1:$NGINX_PROXY_PORT/ok.txt" \
  "http://$EDGE/ok.txt"; do
  wait_http "$url" 60 || { tail -n 20 "$state"/*.log >&2; exit 1; }
done
want=$(stat -c %s "$state/www/big.bin")
edge_pid=$(cat "$run/edge.pid")
rss_kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

# One download: "ttfb_s total_s bytes".
fetch() {
  curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}\n' "$1"
}
# Medians of RUNS downloads of url: "ttfb_ms total_ms".
medians() {
  local url=$1 i
  for ((i = 0; i < RUNS; i++)); do
    read -r t1 t2 n < <(fetch "$url")
    [ "$n" = "$want" ] || { echo "proxy_stream.sh: $url gave $n bytes, not $want" >&2; exit 1; }
    echo "$t1 $t2"
  done | python3 -c '
import statistics, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin]
print("%.2f %.1f" % (statistics.median(r[0] for r in rows) * 1e3, statistics.median(r[1] for r in rows) * 1e3))'
}

rss_before=$(rss_kb "$edge_pid" VmRSS)
declare -A fig
for t in "backend|http://127.0.0.1:$BACKEND_PORT/big.bin" "nginx|http://127.0.0.1:$NGINX_PROXY_PORT/big.bin" \
  "edge|http://$EDGE/big.bin"; do
  fig[${t%%|*}]=$(medians "${t#*|}")
done
pids=()
for ((i = 0; i < PARALLEL; i++)); do
  fetch "http://$EDGE/big.bin" >"$state/par.$i" &
  pids+=($!)
done
wait "${pids[@]}"
for ((i = 0; i < PARALLEL; i++)); do
  read -r _ _ n <"$state/par.$i"
  [ "$n" = "$want" ] || { echo "proxy_stream.sh: a parallel download gave $n bytes, not $want" >&2; exit 1; }
done
rss_peak=$(rss_kb "$edge_pid" VmHWM)

result=$out/proxy-stream-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "proxy_stream.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), a ${SIZE_MB} MiB file, medians of $RUNS downloads"
  printf '%-34s %14s %14s\n' target "first byte ms" "last byte ms"
  for name in backend nginx edge; do
    read -r a b <<<"${fig[$name]}"
    printf '%-34s %14s %14s\n' "$name$([ "$name" = backend ] && echo ' (nginx, direct)')" "$a" "$b"
  done
  read -r na nb <<<"${fig[nginx]}"
  read -r ea eb <<<"${fig[edge]}"
  awk -v na="$na" -v nb="$nb" -v ea="$ea" -v eb="$eb" \
    'BEGIN { printf "edge / nginx proxy_pass: first byte %.2fx, last byte %.2fx\n", ea / na, eb / nb }'
  echo "edge resident memory: ${rss_before} kB before, peak ${rss_peak} kB after $RUNS + $PARALLEL-at-once downloads of ${SIZE_MB} MiB"
} | tee "$result"
echo "proxy_stream.sh: results in ${result#"$root"/}"
