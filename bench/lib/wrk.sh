# shellcheck shell=bash
# wrk runs and their figures, for the HTTP benchmarks (bench/edge.sh). Sourced.
#   wrk_run OUT CONNS SECONDS URL [wrk args...]  one run, -t2 --latency, raw output in OUT
#   wrk_figures OUT  -> "requests/s p50_ms p99_ms errors" (errors: non-2xx/3xx answers plus socket
#                       errors; a run with errors is reported, not hidden, and its rate is suspect)
#   nginx_conf DIR PORT 'SERVER BODY' ['HTTP EXTRA']  writes DIR/nginx.conf (2 workers, no access
#                       log, every temp path inside DIR); nginx_start NAME DIR PIDDIR starts it.

wrk_run() {
  local out=$1 conns=$2 secs=$3 url=$4
  shift 4
  echo "bench: wrk -t2 -c$conns -d${secs}s $url" >&2
  wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency "$@" "$url" >"$out" 2>&1 || {
    cat "$out" >&2
    return 1
  }
}

# Latencies come as 512.00us, 1.20ms, 1.02s or 1.50m.
wrk_figures() {
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                        if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
       /Requests\/sec/ { r = $2 } /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
       /Non-2xx or 3xx/ { e += $NF }
       /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
       END { printf "%.0f %.3f %.3f %d\n", r, p50, p99, e }' "$1"
}

nginx_conf() {
  local dir=$1 port=$2 server=$3 http=${4:-}
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<NGX
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  $http
  server {
    listen 127.0.0.1:$port backlog=4096;
    $server
  }
}
NGX
}

nginx_start() {
  local name=$1 dir=$2 piddir=$3
  proc_start "$name" "$piddir" "$dir/stderr.log" \
    nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
}
