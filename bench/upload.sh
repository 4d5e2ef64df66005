#!/usr/bin/env bash
# Benchmark: a ~2,000-page PDF uploaded through the edge end to end, beside the bare extraction of
# the same bytes in the same run.
#   bench/upload.sh            (from anywhere; builds what is missing into BUILD_DIR)
# Each of RUNS rounds (3) makes a copy of the document that differs in a trailing comment (new
# bytes, so no upload is answered from svc-pdf's blob or Redis text cache), then times, one after
# the other on an otherwise idle stack:
#   - mutool draw -F txt of it (a process, output discarded);
#   - svc-pdf's own extraction of it (svc-pdf/pdf_bench_extract: extract.c as the service runs it,
#     a process: start-up, read, extract; built with -DBENCH=ON);
#   - POST /api/v1/documents (raw application/pdf, bearer token) through the edge to svc-pdf, from
#     the first byte sent until the 201 is in (curl's time_total): receive and stream to svc-pdf's
#     spool in pieces, hash, extract, write the file, store pages and chunks in PostgreSQL.
# Prints the medians and the ratio upload / bare extraction (goal, issue 9: <= 1.3), and per round
# where the upload's time went: svc-pdf's extraction (its extract_duration_seconds), the rest of
# the pdf.UploadBody handler (spool read back, hash, file, PostgreSQL: rpc_duration_seconds minus
# the extraction), the edge (its access log's dur_ms minus the handler: reading the body and
# streaming it to svc-pdf in 1 MiB pdf.UploadPart pieces, the last RPC there and back), and
# outside the edge (curl's time_total minus dur_ms: the headers' trip, connection, response).
# The services run with their defaults (svc-pdf: 2 workers, EDGE_RPC_TIMEOUT_MS 10 s), unpinned.
# Then HELD (10) uploads announce 50 MB, send 40 MB and stall: the edge's resident memory with them
# held, and the spools svc-pdf removes once they leave (pdf.UploadAbort).
# Env: RUNS, PAGES (2000), HELD, BUILD_DIR (build), KEEP=1 (keep the state dir and PostgreSQL's files,
# logs included). Private loopback ports 31500-31599, a temporary state dir, everything stopped
# at the end. Results: bench/results/upload-<time>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/lib/servers.sh
. scripts/lib/servers.sh
# shellcheck source=lib/stack.sh
. bench/lib/stack.sh

RUNS=${RUNS:-3}
PAGES=${PAGES:-2000}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$root/build}")
PG_PORT=31532 REDIS_PORT=31579 AUTH_PORT=31501 AUTH_ADMIN=31502 PDF_PORT=31511 PDF_ADMIN=31512
EDGE=127.0.0.1:31580
for tool in mutool curl python3 psql; do
  command -v "$tool" >/dev/null || { echo "upload.sh: $tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done

cmake -S "$root" -B "$BUILD_DIR" -DBENCH=ON >/dev/null
BUILD_DIR=$BUILD_DIR bash scripts/build.sh svc-auth svc-pdf edge pdf_bench_extract >/dev/null
bare=$BUILD_DIR/svc-pdf/pdf_bench_extract
data=$BUILD_DIR/bench-data
mkdir -p "$data"
doc=$data/doc$PAGES.pdf
if [ ! -s "$doc" ]; then
  echo "upload.sh: generating a $PAGES-page PDF" >&2
  test/data/gen_test_pdfs.sh text "$doc" "$PAGES"
fi
out=$root/bench/results
mkdir -p "$out"
state=$(mktemp -d /tmp/learnapp-bench-upload.XXXXXX)
run=$state/run

cleanup() {
  proc_stop edge "$run"
  proc_stop svc-pdf "$run"
  proc_stop svc-auth "$run"
  redis_stop "$state"
  pg_stop "$state" immediate
  [ -n "${KEEP:-}" ] && return
  rm -rf "$(pg_home "$state")" "$state"
}
trap cleanup EXIT

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
bench_base_start "$state" "$run" "$BUILD_DIR"
# Every statement goes to PostgreSQL's log with its time (not its parameters: megabytes).
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres \
  -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "ALTER SYSTEM SET log_parameter_max_length = 0" \
  -c "SELECT pg_reload_conf()" >/dev/null
# The held uploads below are one user's: PDF_USER_MAX_SPOOLS lets all of them arrive at once (the
# default, 4, would refuse the others, which is the quota's job, not what is measured here).
proc_start svc-pdf "$run" "$state/svc-pdf.log" env LOG_LEVEL=info PDF_DATA_DIR="$state/pdfs" \
  PDF_USER_MAX_SPOOLS="${HELD:-10}" \
  PDF_RPC_URL="tcp://127.0.0.1:$PDF_PORT" PDF_ADMIN_ADDR="127.0.0.1:$PDF_ADMIN" \
  "$BUILD_DIR/svc-pdf/svc-pdf"
for url in "http://127.0.0.1:$PDF_ADMIN/readyz"; do
  wait_http "$url" 60 || { tail -n 20 "$state"/svc-*.log >&2; exit 1; }
done
proc_start edge "$run" "$state/edge.log" env LOG_LEVEL=warn EDGE_ADDR="$EDGE" \
  EDGE_AUTH_URLS="tcp://127.0.0.1:$AUTH_PORT" EDGE_PDF_URLS="tcp://127.0.0.1:$PDF_PORT" \
  EDGE_RATE_PER_S=0 "$BUILD_DIR/edge/edge"
wait_http "http://$EDGE/readyz" 60 || { tail -n 20 "$state/edge.log" >&2; exit 1; }

email="bench-$(date +%s)-$RANDOM@example.com"
cred="{\"email\":\"$email\",\"password\":\"benchmark password\"}"
curl -sf -H 'Content-Type: application/json' -d "$cred" "http://$EDGE/api/v1/auth/register" >/dev/null
token=$(curl -sf -H 'Content-Type: application/json' -d "$cred" "http://$EDGE/api/v1/auth/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

now_ns() { date +%s%N; }
# Wall milliseconds of one run of a command (output discarded); fails with the command.
time_ms() {
  local s e
  s=$(now_ns)
  "$@" >/dev/null 2>&1 || return 1
  e=$(now_ns)
  echo $(((e - s) / 1000000))
}
# metric NAME LABEL: on svc-pdf's admin port, the value of the sample whose line names NAME and
# LABEL (names carry the service's prefix, pdf_); 0 when absent.
metric() {
  curl -sf "http://127.0.0.1:$PDF_ADMIN/metrics" |
    awk -v n="$1" -v l="$2" 'index($1, n) > 0 && index($1, l) > 0 { v = $2 } END { print v + 0 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

pages=$("$bare" "$doc" | sed -n 's/.*pages=\([0-9]*\).*/\1/p')
size=$(stat -c %s "$doc")
rows=$state/rows
: >"$rows"
for i in $(seq "$RUNS"); do
  f=$state/doc-$i.pdf
  cp "$doc" "$f"
  printf '%% bench round %s %s\n' "$i" "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$f"
  m=$(time_ms mutool draw -q -F txt -o /dev/null "$f")
  b=$(time_ms "$bare" "$f")
  rpc0=$(metric 'rpc_duration_seconds_sum' 'UploadBody"') ext0=$(metric 'extract_duration_seconds_sum' '')
  part0=$(metric 'rpc_duration_seconds_sum' 'UploadPart"')
  read -r code total < <(curl -s -o "$state/resp-$i.json" -w '%{http_code} %{time_total}\n' \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/pdf' \
    --data-binary @"$f" "http://$EDGE/api/v1/documents?filename=doc-$i.pdf")
  [ "$code" = 201 ] || { echo "upload.sh: the upload answered $code: $(cat "$state/resp-$i.json")" >&2; exit 1; }
  # The chunks' full-text vectors are filled after the 201 (svc-pdf/indexer.h): wait for them
  # before anything else runs, so that work overlaps neither the next round's baselines nor its
  # upload, and report how long after the 201 the document was fully indexed.
  t201=$(now_ns)
  until [ "$(psql -qtA -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres \
    -c 'SELECT count(*) FROM pdf.chunks WHERE tsv IS NULL')" = 0 ]; do
    [ $((($(now_ns) - t201) / 1000000)) -lt 60000 ] || { echo "upload.sh: chunks not indexed after 60 s" >&2; exit 1; }
    sleep 0.02
  done
  ix=$((($(now_ns) - t201) / 1000000))
  rpc1=$(metric 'rpc_duration_seconds_sum' 'UploadBody"') ext1=$(metric 'extract_duration_seconds_sum' '')
  part1=$(metric 'rpc_duration_seconds_sum' 'UploadPart"')
  dur=$(grep '"type":"access"' "$state/edge.log" | grep '"route":"v1_doc_upload"' | tail -n 1 |
    sed -n 's/.*"dur_ms":\([0-9.]*\).*/\1/p')
  echo "bench: round $i: mutool ${m} ms, ours ${b} ms, upload ${total} s, indexed ${ix} ms after" >&2
  awk -v m="$m" -v b="$b" -v t="$total" -v d="$dur" -v r0="$rpc0" -v r1="$rpc1" -v e0="$ext0" -v e1="$ext1" -v ix="$ix" \
    -v p0="$part0" -v p1="$part1" \
    'BEGIN { up = t * 1000; rpc = (r1 - r0) * 1000; ext = (e1 - e0) * 1000; pc = (p1 - p0) * 1000;
             printf "%d %d %.0f %.0f %.0f %.0f %.0f %d %.0f\n", m, b, up, ext, rpc - ext, d - rpc, up - d, ix, pc }' >>"$rows"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Held uploads (issue 9: "10 stalled uploads: +500 MB"): HELD connections each announce a
# 50,000,000-byte body, send 40 MB of it as fast as the edge reads, and stall. The edge's
# resident memory before, with all of them held, and whether their spools go once they leave.
HELD=${HELD:-10}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$run/edge.pid")/status"; }
rss_before=$(rss_kb)
held_out=$(python3 - "$EDGE" "$token" "$HELD" "$state/pdfs/spool" "$(cat "$run/edge.pid")" <<'PY'
import os, socket, sys, time
edge, token, n, spool, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
host, port = edge.rsplit(":", 1)
chunk = b"%PDF-1.4\n" + b"x" * (1 << 20)
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(("POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/pdf\r\nContent-Length: 50000000\r\n\r\n" % token).encode())
    socks.append(s)
sent = 0
for s in socks:
    left = 40_000_000
    while left > 0:
        left -= s.send(chunk[:min(left, len(chunk))])
    sent += 40_000_000
def rss():
    with open("/proc/%s/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
def hwm():
    with open("/proc/%s/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
# Until the edge has passed on all it can (the spools stop growing).
def spooled():
    return sum(os.path.getsize(os.path.join(spool, f)) for f in os.listdir(spool))
last, t = -1, time.time()
while spooled() != last and time.time() - t < 30:
    last = spooled(); time.sleep(0.5)
held_rss, peak = rss(), hwm()
for s in socks:
    s.close()
t0 = time.time()
while os.listdir(spool) and time.time() - t0 < 10:
    time.sleep(0.02)
print(held_rss, peak, last, len(os.listdir(spool)), int((time.time() - t0) * 1000))
PY
)
read -r held_rss held_hwm held_spooled held_left held_gone_ms <<<"$held_out"

col() { awk -v c="$1" '{ print $c }' "$rows" | median; }
m=$(col 1) b=$(col 2) up=$(col 3)
result=$out/upload-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "upload.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
  echo "document: $pages pages, $size bytes; $RUNS rounds; load average before $load_start, after $load_end"
  printf '%-6s %9s %9s %10s | %11s %12s %8s %8s %9s | %9s\n' round mutool_ms ours_ms upload_ms \
    "extract_ms" "handler_rest" edge_ms outside pieces_ms index_ms
  awk '{ printf "%-6d %9d %9d %10d | %11d %12d %8d %8d %9d | %9d\n", NR, $1, $2, $3, $4, $5, $6, $7, $9, $8 }' "$rows"
  printf 'median %9d %9d %10d\n' "$m" "$b" "$up"
  awk -v m="$m" -v b="$b" -v u="$up" 'BEGIN {
    printf "upload end to end / our bare extraction: %.2fx (goal <= 1.3: %s); / mutool: %.2fx\n",
           u / b, u / b <= 1.3 ? "met" : "missed", u / m }'
  echo "held uploads: $HELD x 40 MB sent of 50 MB, stalled: the edge's RSS $((rss_before / 1024)) MB before," \
    "$((held_rss / 1024)) MB held (peak $((held_hwm / 1024)) MB), $((held_spooled / 1000000)) MB in svc-pdf's spools;" \
    "$held_left spools left ${held_gone_ms} ms after the clients left"
  echo "(handler_rest: the spool read back, hash, dedup lookups, the file, pages and chunks into"
  echo " PostgreSQL; edge_ms: the body read and streamed in 1 MiB pieces, pdf.UploadBody both ways;"
  echo " pieces_ms: svc-pdf writing the pieces (pdf.UploadPart), inside edge_ms, while the body comes;"
  echo " outside: curl's time beyond the edge's dur_ms;"
  echo " index_ms: after the 201, until every chunk has its stored full-text vector (svc-pdf's indexer;"
  echo " the document is searchable before, with vectors computed on the fly); the next round waits)"
  # PostgreSQL's slow statements by the table written (INSERT before, COPY batches since the
  # storage overlaps the extraction: their sum is then PostgreSQL's busy time, not the wait).
  for s in "INSERT INTO blobs " "INSERT INTO pages " "INSERT INTO chunks " "INSERT INTO documents " \
    "COPY pages " "COPY chunks " "UPDATE chunks "; do
    v=$({ grep -F "$s" "$(pg_home "$state")/postgres.log" || true; } |
      sed -n 's/.*duration: \([0-9.]*\) ms.*/\1/p' | awk -v n="$RUNS" '{ s += $1 } END { if (NR) printf "%.0f", s / n }')
    [ -z "$v" ] || echo "PostgreSQL ${s% }: $v ms an upload (sum, mean over rounds)"
  done
} | tee "$result"
{
  printf '\n---- svc-pdf log\n'
  grep -E 'PDF-EXTRACT|PDF-DEDUP' "$state/svc-pdf.log" || true
  printf '\n---- edge access log (uploads)\n'
  grep '"route":"v1_doc_upload"' "$state/edge.log" || true
} >>"$result"
echo "upload.sh: results in ${result#"$root"/}"
