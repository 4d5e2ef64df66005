# shellcheck shell=bash
# Starting and stopping the project's own PostgreSQL and Redis, each with its own data directory
# under a state dir (never the system cluster). Sourced by scripts/up.sh and test/harness/*.sh.
# All servers listen on 127.0.0.1 only. Functions are idempotent.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# pg_start DIR PORT: initialises DIR/pgdata on first use, starts the server, waits until it accepts.
pg_start() {
  local dir=$1 port=$2 data="$1/pgdata" sock="$1/pgsock" run=()
  mkdir -p "$dir" "$sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir" "$sock" 2>/dev/null || true
    [ -d "$data" ] && chown -R postgres:postgres "$data"
    run=(runuser -u postgres --)
    chmod 0777 "$dir" "$sock"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    "${run[@]}" "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  if "${run[@]}" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return 0
  fi
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=${PG_FSYNC:-on}" \
    start >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; return 1; }
}

# pg_stop DIR [MODE]: stops the server of DIR/pgdata (mode fast by default; immediate simulates a crash).
pg_stop() {
  local dir=$1 mode=${2:-fast} run=()
  [ -s "$dir/pgdata/PG_VERSION" ] || return 0
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1 || return 0
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$dir/pgdata" -m "$mode" -w -t 60 stop >/dev/null
}

# redis_start DIR PORT: starts a redis-server with its files in DIR/redis, waits until it answers.
redis_start() {
  local dir=$1/redis port=$2 i
  mkdir -p "$dir"
  if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    return 0
  fi
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
  for i in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis did not start on port $port" >&2
  return 1
}

# redis_stop DIR
redis_stop() {
  local pidf=$1/redis/redis.pid pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$pidf"
}

# proc_start NAME PIDDIR LOG CMD...: starts a background process, records its pid.
proc_start() {
  local name=$1 piddir=$2 log=$3
  shift 3
  mkdir -p "$piddir"
  if [ -f "$piddir/$name.pid" ] && kill -0 "$(cat "$piddir/$name.pid")" 2>/dev/null; then
    return 0
  fi
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$piddir/$name.pid"
}

# proc_stop NAME PIDDIR [SIGNAL]: signals and waits (up to 10 s, then SIGKILL).
proc_stop() {
  local pidf=$2/$1.pid sig=${3:-TERM} pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidf"
}

# wait_http URL [TRIES]: waits until URL answers 200.
wait_http() {
  local url=$1 tries=${2:-200} i
  for i in $(seq 1 "$tries"); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = "200" ] && return 0
    sleep 0.05
  done
  return 1
}
