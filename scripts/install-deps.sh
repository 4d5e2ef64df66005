#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and run locally, then the npm
# packages of the export checker (test/tools/exportcheck: `npm ci` from its package-lock.json).
# Idempotent: packages already present are skipped, npm ci runs again only when the lock file
# changed; without root it only reports the missing Debian packages (npm ci needs no root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

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
# Node (18 or later) and npm for the export checker: a machine that has them from elsewhere (a
# nodejs package that bundles npm) keeps them; Debian's own come as two packages.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

debian_packages() {
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
    return 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # (errexit does not apply inside a function called with ||: each step says so itself)
  apt-get update -qq || return 1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
  # Debian's postgresql package starts a system cluster; the project runs its own, so stop it.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do
      pg_ctlcluster "${c%/*}" "${c#*/}" stop 2>/dev/null || true
    done
  fi
  service redis-server stop >/dev/null 2>&1 || true
  service nginx stop >/dev/null 2>&1 || true
}

# npm ci when node_modules was not installed from this very lock file (its sha256 is kept there).
node_packages() {
  local dir=$root/test/tools/exportcheck sum
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm not found: cannot install $dir" >&2
    return 1
  fi
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.lock-sha256" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  echo "install-deps: npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  echo "$sum" >"$dir/node_modules/.lock-sha256"
}

rc=0
debian_packages || rc=1
node_packages || rc=1
exit $rc
