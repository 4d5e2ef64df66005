#!/usr/bin/env bash
# Stops what scripts/up.sh started (same STATE_DIR): the edge first, then the services, Redis and
# PostgreSQL. Does nothing for what is not running.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/servers.sh
. "$root/scripts/lib/servers.sh"
STATE_DIR=$(realpath -m "${STATE_DIR:-$root/.state}")
[ -d "$STATE_DIR" ] || { echo "down: nothing in $STATE_DIR"; exit 0; }
run=$STATE_DIR/run
proc_stop edge "$run"
for svc in svc-eval svc-qgen svc-chat svc-pdf svc-auth; do proc_stop "$svc" "$run"; done
redis_stop "$STATE_DIR"
pg_stop "$STATE_DIR"
echo "down: stopped (state kept in $STATE_DIR)"
