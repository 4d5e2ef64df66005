#!/usr/bin/env bash
# ctest fixture: the whole stack for end-to-end tests, on private ports, over the PostgreSQL and
# Redis that the `pgredis` fixture started in STATE_DIR.
#   two svc-auth replicas  tcp://127.0.0.1:27101 (admin 29101), tcp://127.0.0.1:27111 (admin 29111)
#   svc-pdf (when built)   tcp://127.0.0.1:27102 (admin 29102)
#   fake LLM               http://127.0.0.1:28500  (test/fakellm; tests steer it with /_control)
#   two svc-chat replicas  tcp://127.0.0.1:27103 (admin 29103, events 27203),
#      (when built)        tcp://127.0.0.1:27113 (admin 29113, events 27213)
#   two svc-qgen replicas  tcp://127.0.0.1:27104 (admin 29104, events 27204),
#      (when built)        tcp://127.0.0.1:27114 (admin 29114, events 27214)
#   two svc-eval replicas  tcp://127.0.0.1:27105 (admin 29105, events 27205),
#      (when built)        tcp://127.0.0.1:27115 (admin 29115, events 27215)
#   fake frontend          http://127.0.0.1:28090  (test/harness/fakefront.py: stands in for the
#                                                   web app's own server)
#   edge                   http://127.0.0.1:28080  (admin 29180: /configz, /metrics)
#   strict edge            http://127.0.0.1:28081  (small limits: test_security.c)
#   old backend            http://127.0.0.1:28095  (test/harness/oldbackend.py: the monolith the
#                                                   legacy routes migrate from)
#   migrate edge           http://127.0.0.1:28082  (EDGE_LEGACY_*: 10% of users and two flagged
#                                                   ones to the old backend, fallback on, svc-chat
#                                                   pointed at a dead port: test_migrate.c)
#   reload edge            http://127.0.0.1:28083  (admin 29190; EDGE_CONFIG_FILE
#                                                   STATE_DIR/edge_reload.conf, which
#                                                   test_reload.c rewrites before a SIGHUP)
# usage: stack.sh start|stop STATE_DIR BUILD_DIR
#        stack.sh kill-auth STATE_DIR BUILD_DIR 0|1   (SIGKILL one svc-auth replica)
#        stack.sh kill-pdf STATE_DIR BUILD_DIR        (SIGKILL svc-pdf; `start` brings it back)
#        stack.sh kill-qgen STATE_DIR BUILD_DIR 0|1   (SIGKILL one svc-qgen replica)
#        stack.sh start-qgen STATE_DIR BUILD_DIR 0|1  (start it again)
#        stack.sh kill-eval STATE_DIR BUILD_DIR 0|1   (SIGKILL one svc-eval replica)
#        stack.sh start-eval STATE_DIR BUILD_DIR 0|1  (start it again)
#        stack.sh kill-chat STATE_DIR BUILD_DIR 0|1   (SIGKILL one svc-chat replica)
#        stack.sh start-chat STATE_DIR BUILD_DIR 0|1  (start it again)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/servers.sh
. "$here/../../scripts/lib/servers.sh"
cmd=$1
state=$(mkdir -p "$2" && cd "$2" && pwd)
build=$(cd "$3" && pwd)
run="$state/run" logs="$state/logs"
mkdir -p "$run" "$logs"

secret_file="$state/jwt.secret"
# One signing secret per state dir, shared by svc-auth and the edge; tests read it from this file.
[ -s "$secret_file" ] || (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$secret_file")

export LOG_LEVEL=${LOG_LEVEL:-info}
export DATABASE_URL="host=127.0.0.1 port=${CM_TEST_PG_PORT:-25432} dbname=postgres user=postgres"
export REDIS_HOST=127.0.0.1 REDIS_PORT=${CM_TEST_REDIS_PORT:-26379}
JWT_SECRET=$(cat "$secret_file")
export JWT_SECRET
# Fast hashing and a generous per-address limit: the tests log in many times.
export AUTH_PWHASH_OPSLIMIT=1 AUTH_PWHASH_MEMLIMIT_KIB=8192 AUTH_THROTTLE_ADDR_MAX=1000 AUTH_WORKERS=4
export PDF_DATA_DIR="$state/pdfs"

start_auth() {
  local i=$1 port=$((27101 + 10 * $1)) admin=$((29101 + 10 * $1))
  AUTH_RPC_URL="tcp://127.0.0.1:$port" AUTH_ADMIN_ADDR="127.0.0.1:$admin" \
    proc_start "auth$i" "$run" "$logs/auth$i.log" "$build/svc-auth/svc-auth"
  wait_http "http://127.0.0.1:$admin/readyz" 60 || { tail -n 30 "$logs/auth$i.log" >&2; return 1; }
}

# Short leases and quick retries: the fault tests watch a replica take over a job.
export LLM_BASE_URL=http://127.0.0.1:28500/v1 LLM_MODEL=fake LLM_MAX_CONCURRENCY=${LLM_MAX_CONCURRENCY:-8}
export LLM_TIMEOUT_MS=20000 LLM_BACKOFF_BASE_MS=100 LLM_BACKOFF_MAX_MS=1000 LLM_QUOTA_COOLDOWN_S=2
export QGEN_LEASE_MS=3000 QGEN_PDF_URLS=tcp://127.0.0.1:27102
# No spare questions (the service's default is 25%): test/e2e/test_qgen_hedge.c proves the
# duplicates of a late call, which spares would make unneeded; test/integration/test_qgen_stream.c
# proves the spares. bench/qgen.sh sets the service's default.
export QGEN_SPARE_PCT=${QGEN_SPARE_PCT:-0}
export EVAL_LEASE_MS=3000 EVAL_PDF_URLS=tcp://127.0.0.1:27102
# Open answers per grading call and calls more for a batch the model botched (svc-eval's
# defaults): test/e2e/test_eval.c reads the same variables to count the calls an attempt costs.
export EVAL_BATCH=${EVAL_BATCH:-8} EVAL_RETRIES=${EVAL_RETRIES:-2}
export EVAL_QGEN_URLS=tcp://127.0.0.1:27104,tcp://127.0.0.1:27114

start_qgen() {
  local i=$1 port=$((27104 + 10 * $1)) admin=$((29104 + 10 * $1)) events=$((27204 + 10 * $1))
  QGEN_RPC_URL="tcp://127.0.0.1:$port" QGEN_ADMIN_ADDR="127.0.0.1:$admin" \
    QGEN_EVENTS_URL="tcp://127.0.0.1:$events" \
    proc_start "qgen$i" "$run" "$logs/qgen$i.log" "$build/svc-qgen/svc-qgen"
  wait_http "http://127.0.0.1:$admin/healthz" 60 || { tail -n 30 "$logs/qgen$i.log" >&2; return 1; }
}

start_eval() {
  local i=$1 port=$((27105 + 10 * $1)) admin=$((29105 + 10 * $1)) events=$((27205 + 10 * $1))
  EVAL_RPC_URL="tcp://127.0.0.1:$port" EVAL_ADMIN_ADDR="127.0.0.1:$admin" \
    EVAL_EVENTS_URL="tcp://127.0.0.1:$events" \
    proc_start "eval$i" "$run" "$logs/eval$i.log" "$build/svc-eval/svc-eval"
  wait_http "http://127.0.0.1:$admin/healthz" 60 || { tail -n 30 "$logs/eval$i.log" >&2; return 1; }
}

# Chat: answers bounded well inside the e2e tests' patience; events for the edge's WebSocket.
export CHAT_PDF_URLS=tcp://127.0.0.1:27102 CHAT_TURN_TIMEOUT_MS=20000 CHAT_WORKERS=${CHAT_WORKERS:-16}

start_chat() {
  local i=$1 port=$((27103 + 10 * $1)) admin=$((29103 + 10 * $1)) events=$((27203 + 10 * $1))
  CHAT_RPC_URL="tcp://127.0.0.1:$port" CHAT_ADMIN_ADDR="127.0.0.1:$admin" \
    CHAT_EVENTS_URL="tcp://127.0.0.1:$events" \
    proc_start "chat$i" "$run" "$logs/chat$i.log" "$build/svc-chat/svc-chat"
  wait_http "http://127.0.0.1:$admin/readyz" 60 || { tail -n 30 "$logs/chat$i.log" >&2; return 1; }
}

case $cmd in
  start)
    start_auth 0
    start_auth 1
    pdf_urls=""
    if [ -x "$build/svc-pdf/svc-pdf" ]; then
      PDF_RPC_URL="tcp://127.0.0.1:27102" PDF_ADMIN_ADDR="127.0.0.1:29102" \
        proc_start pdf "$run" "$logs/pdf.log" "$build/svc-pdf/svc-pdf"
      wait_http "http://127.0.0.1:29102/readyz" 60 || { tail -n 30 "$logs/pdf.log" >&2; exit 1; }
      pdf_urls="tcp://127.0.0.1:27102"
    fi
    qgen_urls="" qgen_events="" eval_urls="" eval_events="" chat_urls="" chat_events=""
    if [ -x "$build/svc-qgen/svc-qgen" ] || [ -x "$build/svc-eval/svc-eval" ] || [ -x "$build/svc-chat/svc-chat" ]; then
      proc_start fakellm "$run" "$logs/fakellm.log" python3 "$here/../fakellm/fakellm.py" --port 28500
      wait_http "http://127.0.0.1:28500/healthz" 20 || { tail -n 20 "$logs/fakellm.log" >&2; exit 1; }
    fi
    if [ -x "$build/svc-chat/svc-chat" ] && [ -n "$pdf_urls" ]; then
      start_chat 0
      start_chat 1
      chat_urls="tcp://127.0.0.1:27103,tcp://127.0.0.1:27113"
      chat_events="tcp://127.0.0.1:27203,tcp://127.0.0.1:27213"
    fi
    if [ -x "$build/svc-qgen/svc-qgen" ]; then
      start_qgen 0
      start_qgen 1
      qgen_urls="tcp://127.0.0.1:27104,tcp://127.0.0.1:27114"
      qgen_events="tcp://127.0.0.1:27204,tcp://127.0.0.1:27214"
    fi
    if [ -x "$build/svc-eval/svc-eval" ]; then
      start_eval 0
      start_eval 1
      eval_urls="tcp://127.0.0.1:27105,tcp://127.0.0.1:27115"
      eval_events="tcp://127.0.0.1:27205,tcp://127.0.0.1:27215"
    fi
    mkdir -p "$state/frontend/static"
    printf '<!doctype html><title>learnapp</title><p>frontend-marker</p>\n' >"$state/frontend/index.html"
    printf 'console.log("app");\n' >"$state/frontend/static/app.js"
    proc_start frontend "$run" "$logs/frontend.log" \
      python3 "$here/fakefront.py" --port 28090 --dir "$state/frontend"
    wait_http "http://127.0.0.1:28090/" 20 || { tail -n 20 "$logs/frontend.log" >&2; exit 1; }
    EDGE_FRONTEND_URL=http://127.0.0.1:28090 \
    EDGE_ADDR=127.0.0.1:28080 EDGE_AUTH_URLS="tcp://127.0.0.1:27101,tcp://127.0.0.1:27111" \
      EDGE_PDF_URLS="$pdf_urls" EDGE_QGEN_URLS="$qgen_urls" EDGE_QGEN_EVENTS_URLS="$qgen_events" \
      EDGE_EVAL_URLS="$eval_urls" EDGE_EVAL_EVENTS_URLS="$eval_events" \
      EDGE_CHAT_URLS="$chat_urls" EDGE_CHAT_EVENTS_URLS="$chat_events" \
      EDGE_CORS_ORIGINS=http://localhost:3000 EDGE_RATE_PER_S=0 EDGE_ADMIN_ADDR=127.0.0.1:29180 \
      EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" \
      proc_start edge "$run" "$logs/edge.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28080/readyz" 60 || { tail -n 30 "$logs/edge.log" >&2; exit 1; }
    # A second edge with small limits, for test_security.c: each limit reachable in a test.
    EDGE_ADDR=127.0.0.1:28081 EDGE_AUTH_URLS="tcp://127.0.0.1:27101,tcp://127.0.0.1:27111" \
      EDGE_PDF_URLS="$pdf_urls" EDGE_QGEN_URLS="$qgen_urls" EDGE_FRONTEND_URL=http://127.0.0.1:28090 \
      EDGE_CORS_ORIGINS=http://localhost:3000 EDGE_RATE_PER_S=1 EDGE_RATE_BURST=10 \
      EDGE_TRUSTED_PROXIES=127.0.0.1/32 EDGE_IDLE_TIMEOUT_S=2 EDGE_MAX_CONNECTIONS_PER_ADDR=24 \
      EDGE_HEADER_MAX=8192 EDGE_BODY_BUDGET=2621440 EDGE_PROXY_TIMEOUT_MS=1500 \
      EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" \
      proc_start edge_strict "$run" "$logs/edge_strict.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28081/readyz" 60 || { tail -n 30 "$logs/edge_strict.log" >&2; exit 1; }
    # A third edge in the middle of a migration, for test_migrate.c: 10% of users (and the two
    # flagged ones) on the old backend, the rest on the new services; svc-chat "down" (a port
    # nothing listens on) so that its legacy routes fall back to the old backend.
    proc_start oldbackend "$run" "$logs/oldbackend.log" python3 "$here/oldbackend.py" --port 28095
    wait_http "http://127.0.0.1:28095/healthz" 20 || { tail -n 20 "$logs/oldbackend.log" >&2; exit 1; }
    EDGE_ADDR=127.0.0.1:28082 EDGE_AUTH_URLS="tcp://127.0.0.1:27101,tcp://127.0.0.1:27111" \
      EDGE_PDF_URLS="$pdf_urls" EDGE_CHAT_URLS=tcp://127.0.0.1:27199 \
      EDGE_FRONTEND_URL=http://127.0.0.1:28090 EDGE_LEGACY_BACKEND_URL=http://127.0.0.1:28095 \
      EDGE_LEGACY_SHARE=10 EDGE_LEGACY_FALLBACK=1 \
      EDGE_LEGACY_USERS=00000000-0000-4000-9000-000000000001,00000000-0000-4000-9000-000000000002 \
      EDGE_CORS_ORIGINS=http://localhost:3000 EDGE_RATE_PER_S=0 \
      EDGE_REDIS_HOST=127.0.0.1 EDGE_REDIS_PORT="$REDIS_PORT" \
      proc_start edge_migrate "$run" "$logs/edge_migrate.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28082/healthz" 60 || { tail -n 30 "$logs/edge_migrate.log" >&2; exit 1; }
    # A fourth edge whose configuration test_reload.c changes with a file and SIGHUP; limits
    # per process (no Redis), so a reload's new limit is counted here alone.
    [ -f "$state/edge_reload.conf" ] || echo "# test_reload.c rewrites this file" >"$state/edge_reload.conf"
    EDGE_ADDR=127.0.0.1:28083 EDGE_ADMIN_ADDR=127.0.0.1:29190 EDGE_CONFIG_FILE="$state/edge_reload.conf" \
      EDGE_AUTH_URLS="tcp://127.0.0.1:27101,tcp://127.0.0.1:27111" EDGE_RATE_PER_S=0 \
      EDGE_TRUSTED_PROXIES=127.0.0.1/32 EDGE_REDIS_HOST= \
      proc_start edge_reload "$run" "$logs/edge_reload.log" "$build/edge/edge"
    wait_http "http://127.0.0.1:28083/readyz" 60 || { tail -n 30 "$logs/edge_reload.log" >&2; exit 1; }
    wait_http "http://127.0.0.1:29190/configz" 20 || { tail -n 30 "$logs/edge_reload.log" >&2; exit 1; }
    ;;
  stop)
    proc_stop edge "$run"
    proc_stop edge_strict "$run"
    proc_stop edge_migrate "$run"
    proc_stop edge_reload "$run"
    proc_stop oldbackend "$run"
    proc_stop frontend "$run"
    proc_stop qgen0 "$run"
    proc_stop qgen1 "$run"
    proc_stop eval0 "$run"
    proc_stop eval1 "$run"
    proc_stop chat0 "$run"
    proc_stop chat1 "$run"
    proc_stop fakellm "$run"
    proc_stop pdf "$run"
    proc_stop auth0 "$run"
    proc_stop auth1 "$run"
    ;;
  kill-auth)
    case ${4:-} in 0 | 1) ;; *) echo "$0: kill-auth needs replica 0 or 1" >&2; exit 2 ;; esac
    proc_stop "auth$4" "$run" KILL
    ;;
  kill-pdf)
    proc_stop pdf "$run" KILL
    ;;
  kill-qgen | start-qgen)
    case ${4:-} in 0 | 1) ;; *) echo "$0: $cmd needs replica 0 or 1" >&2; exit 2 ;; esac
    if [ "$cmd" = kill-qgen ]; then proc_stop "qgen$4" "$run" KILL; else start_qgen "$4"; fi
    ;;
  kill-eval | start-eval)
    case ${4:-} in 0 | 1) ;; *) echo "$0: $cmd needs replica 0 or 1" >&2; exit 2 ;; esac
    if [ "$cmd" = kill-eval ]; then proc_stop "eval$4" "$run" KILL; else start_eval "$4"; fi
    ;;
  kill-chat | start-chat)
    case ${4:-} in 0 | 1) ;; *) echo "$0: $cmd needs replica 0 or 1" >&2; exit 2 ;; esac
    if [ "$cmd" = kill-chat ]; then proc_stop "chat$4" "$run" KILL; else start_chat "$4"; fi
    ;;
  *) echo "usage: $0 start|stop|kill-auth|kill-pdf|kill-qgen|start-qgen|kill-eval|start-eval|kill-chat|start-chat STATE_DIR BUILD_DIR [replica]" >&2; exit 2 ;;
esac
