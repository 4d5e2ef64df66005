# shellcheck shell=bash
# Starting and stopping the project's own PostgreSQL and Redis, each with its own data directory
# under a state dir (never the system cluster). Sourced by scripts/up.sh and test/harness/*.sh.
# All servers listen on 127.0.0.1 only. Functions are idempotent.

# pg_bin: the directory of the newest installed PostgreSQL's programs (PG_BIN overrides). Looked up
# on use, not when this file is sourced: scripts source it before they install the packages.
pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

# pg_home DIR: where the server's files for state dir DIR live. As root the server runs as the
# postgres user, which cannot reach a checkout under a private directory (a clone in /root, a
# mktemp -d): then its files go to /var/tmp/learnapp-pg/<hash of DIR> instead (the same DIR always
# maps to the same place, so stop and restart find it).
pg_home() {
  local dir=$1
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
    echo "/var/tmp/learnapp-pg/$(printf '%s' "$dir" | sha1sum | cut -c1-16)"
  else
    echo "$dir"
  fi
}

# pg_start DIR PORT: initialises the data directory on first use, starts the server, waits until
# it accepts connections. Its log is pg_home/postgres.log.
pg_start() {
  local dir=$1 port=$2 home data sock as_pg=() bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  home=$(pg_home "$dir")
  data="$home/pgdata" sock="$home/pgsock"
  mkdir -p "$home" "$sock"
  if [ "$(id -u)" -eq 0 ]; then
    [ "$home" = "$dir" ] || chmod 0755 /var/tmp/learnapp-pg
    chown postgres:postgres "$home" "$sock" 2>/dev/null || true
    [ -d "$data" ] && chown -R postgres:postgres "$data"
    as_pg=(runuser -u postgres --)
    chmod 0777 "$home" "$sock"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    "${as_pg[@]}" "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return 0
  fi
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$home/postgres.log" -w -t 60 \
    -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=${PG_FSYNC:-on}" \
    start >/dev/null || { tail -n 20 "$home/postgres.log" >&2; return 1; }
}

# pg_stop DIR [MODE]: stops the server of DIR (mode fast by default; immediate simulates a crash).
pg_stop() {
  local dir=$1 mode=${2:-fast} as_pg=() bin data
  bin=$(pg_bin)
  data="$(pg_home "$dir")/pgdata"
  [ -s "$data/PG_VERSION" ] || return 0
  [ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 0
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
}

# pid_alive PID: the process exists and is not a zombie. Processes started here outlive the script
# that started them and are reaped by init, which may take seconds: a zombie counts as stopped.
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# redis_start DIR PORT: starts a redis-server with its files in DIR/redis, waits until it answers.
redis_start() {
  local dir=$1/redis port=$2
  mkdir -p "$dir"
  if [ -f "$dir/redis.pid" ] && pid_alive "$(cat "$dir/redis.pid")"; then
    return 0
  fi
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis did not start on port $port" >&2
  return 1
}

# redis_stop DIR
redis_stop() {
  local pidf=$1/redis/redis.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if pid_alive "$pid"; then
    kill "$pid"
    for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.05; done
  fi
  rm -f "$pidf"
}

# proc_running NAME PIDDIR: whether the process recorded in PIDDIR/NAME.pid is alive.
proc_running() {
  local pidf=$2/$1.pid
  [ -f "$pidf" ] && pid_alive "$(cat "$pidf")"
}

# proc_start NAME PIDDIR LOG CMD...: starts CMD in the background in its own session (stdin from
# /dev/null, output appended to LOG) and records its pid; does nothing when NAME already runs.
proc_start() {
  local name=$1 piddir=$2 log=$3
  shift 3
  mkdir -p "$piddir"
  proc_running "$name" "$piddir" && return 0
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$piddir/$name.pid"
}

# proc_stop NAME PIDDIR [SIGNAL]: signals (TERM by default) and waits up to 10 s, then SIGKILL.
proc_stop() {
  local pidf=$2/$1.pid sig=${3:-TERM} pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if pid_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do pid_alive "$pid" || break; sleep 0.05; done
    if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidf"
}

# wait_http URL [SECONDS]: waits until URL answers 200, at most SECONDS (default 30).
wait_http() {
  local url=$1 end=$((SECONDS + ${2:-30}))
  while :; do
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null)" = "200" ] && return 0
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.05
  done
}
