#!/usr/bin/env bash
# ctest fixture: PostgreSQL on 127.0.0.1:25432 and Redis on 127.0.0.1:26379 under STATE_DIR.
# usage: pgredis.sh start|stop|restart-pg|stop-pg|start-pg|stop-redis|start-redis STATE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/servers.sh
. "$here/../../scripts/lib/servers.sh"
cmd=$1
state=$(mkdir -p "$2" && cd "$2" && pwd)
PG_PORT=${CM_TEST_PG_PORT:-25432}
REDIS_PORT=${CM_TEST_REDIS_PORT:-26379}
export PG_FSYNC=off   # test data is disposable; fsync only slows the suite
case $cmd in
  start)       pg_start "$state" "$PG_PORT"; redis_start "$state" "$REDIS_PORT" ;;
  stop)        redis_stop "$state"; pg_stop "$state" immediate ;;
  stop-pg)     pg_stop "$state" "${3:-fast}" ;;
  start-pg)    pg_start "$state" "$PG_PORT" ;;
  restart-pg)  pg_stop "$state" immediate; pg_start "$state" "$PG_PORT" ;;
  stop-redis)  redis_stop "$state" ;;
  start-redis) redis_start "$state" "$REDIS_PORT" ;;
  *) echo "usage: $0 start|stop|stop-pg|start-pg|restart-pg|stop-redis|start-redis STATE_DIR" >&2; exit 2 ;;
esac
