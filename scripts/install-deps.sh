#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and run locally.
# Idempotent: packages already present are skipped; without root it only reports what is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-dev llvm clang-format
  libprotobuf-c-dev protobuf-c-compiler
  libnng-dev
  libpq-dev postgresql
  libhiredis-dev redis-server
  libcurl4-openssl-dev
  libmicrohttpd-dev libwslay-dev haproxy
  libmupdf-dev mupdf-tools libmujs-dev libgumbo-dev libopenjp2-7-dev libjbig2dec0-dev libharfbuzz-dev
  libjpeg-dev zlib1g-dev libfreetype-dev libpng-dev libbrotli-dev
  libjwt-dev libjansson-dev libsodium-dev libssl-dev
  libcmocka-dev
  curl wrk nginx-light python3
  # test/data/gen_test_pdfs.sh: mutool (mupdf-tools above), ps2pdf, and groff for the real-prose
  # PDF (without it, licence texts stand in). The tests that use it fail when it fails.
  ghostscript groff-base
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts a system cluster; the project runs its own, so stop it.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do
    pg_ctlcluster "${c%/*}" "${c#*/}" stop 2>/dev/null || true
  done
fi
service redis-server stop >/dev/null 2>&1 || true
service nginx stop >/dev/null 2>&1 || true
