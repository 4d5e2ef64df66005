#!/usr/bin/env bash
# Stops what scripts/up.sh started: the edge first, then the services, Redis and PostgreSQL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/servers.sh
. "$root/scripts/lib/servers.sh"
STATE_DIR=${STATE_DIR:-$root/.state}
[ -d "$STATE_DIR" ] || exit 0
STATE_DIR=$(cd "$STATE_DIR" && pwd)
run="$STATE_DIR/run"
proc_stop edge "$run"
for svc in svc-pdf svc-chat svc-qgen svc-eval svc-auth; do proc_stop "$svc" "$run"; done
redis_stop "$STATE_DIR"
pg_stop "$STATE_DIR"
echo "down: stopped"
