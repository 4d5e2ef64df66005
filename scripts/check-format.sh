#!/usr/bin/env bash
# Fails, listing the files, when a tracked *.c/*.h differs from what clang-format makes of it with
# the checked-in .clang-format; --fix rewrites them instead (what `make format` runs).
#   scripts/check-format.sh [--diff]   check; --diff also prints each file's diff
#   scripts/check-format.sh --fix      format in place
# The formatter is pinned so the check and `make format` agree: the clang-format of Debian's
# clang-format package (scripts/install-deps.sh), major version CF_MAJOR below (Debian 12's).
# Another major version formats differently, so it is refused rather than allowed to report
# (or write) a tree-wide diff. CLANG_FORMAT names another binary of the same major version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CF_MAJOR=14
cf=${CLANG_FORMAT:-clang-format}

mode=check
case ${1:-} in
  "") ;;
  --diff) mode=show-diff ;;
  --fix) mode=fix ;;
  -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--diff | --fix]" >&2; exit 2 ;;
esac

if ! command -v "$cf" >/dev/null 2>&1; then
  echo "check-format: $cf not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
version=$("$cf" --version)
if ! [[ $version =~ clang-format\ version\ ([0-9]+)\. ]] || [ "${BASH_REMATCH[1]}" != "$CF_MAJOR" ]; then
  echo "check-format: need clang-format $CF_MAJOR, $cf is: $version" >&2
  exit 2
fi

mapfile -t files < <(git ls-files -- '*.c' '*.h')
if [ "$mode" = fix ]; then
  printf '%s\0' "${files[@]}" | xargs -0 "$cf" -i --style=file
  exit 0
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bad=0
for f in "${files[@]}"; do
  "$cf" --style=file "$f" >"$out" # a formatter error stops the check (set -e), never passes it
  if ! cmp -s "$out" "$f"; then
    echo "$f"
    if [ "$mode" = show-diff ]; then diff -u "$f" "$out" || true; fi
    bad=$((bad + 1))
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "check-format: $bad of ${#files[@]} files differ from $cf $CF_MAJOR (make format fixes them)" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
