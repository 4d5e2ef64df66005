#!/usr/bin/env bash
# Fails, naming file:line, when project C sources call a banned libc function. Checks the tracked
# *.c/*.h under libcommon, svc-*, edge, test and bench (never build directories or generated code),
# or only the FILEs given. Comments, string and character literals are blanked before matching, so
# "strcpy" in a comment and cm_strlcpy do not count; a call is the name followed by "(".
#   scripts/check-banned.sh [FILE...]
# Why each is banned, and what to use instead:
#   strcpy stpcpy strcat sprintf vsprintf gets  no bound on the destination: cm_strlcpy, snprintf, cm_buf
#   strncpy strncat    strncpy leaves no NUL when the source fills the buffer, strncat's bound is the
#                      room left, not the size: cm_strlcpy, snprintf
#   strtok             hidden global state, wrong on worker threads: strtok_r
#   atoi atol atoll atof  no error, undefined on overflow: cm_parse_i64, strtol/strtod with checks
#   tmpnam tempnam mktemp  the name can be taken before it is opened: mkstemp, mkdtemp
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -gt 0 ]; then
  files=("$@") # as the caller names them, from the caller's directory
elif cd "$root" && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- 'libcommon/*.[ch]' 'svc-*/*.[ch]' 'edge/*.[ch]' \
    'test/*.[ch]' 'bench/*.[ch]')
else
  mapfile -t files < <(find libcommon svc-* edge test bench -name '*.[ch]' 2>/dev/null | sort)
fi

python3 - "${files[@]}" <<'EOF'
import re
import sys

BANNED = ("strcpy stpcpy strcat sprintf vsprintf gets strncpy strncat strtok "
          "atoi atol atoll atof tmpnam tempnam mktemp").split()
# Not part of a longer identifier, not a member (s.gets(), p->gets()), then "(".
CALL = re.compile(r"(?<![\w.])(?<!->)(" + "|".join(BANNED) + r")\s*\(")


def blank(text):
    """The text with comments and string/char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c)
            i += 1
            continue
        out.append(re.sub(r"[^\n]", " ", text[i:j]))
        i = j
    return "".join(out)


found = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read()
    lines = raw.split("\n")
    for no, line in enumerate(blank(raw).split("\n"), 1):
        for m in CALL.finditer(line):
            print(f"{path}:{no}: banned {m.group(1)}(): {lines[no - 1].strip()}")
            found += 1
if found:
    print(f"check-banned: {found} call(s) of banned functions (see the list atop "
          "scripts/check-banned.sh for what to use instead)", file=sys.stderr)
    sys.exit(1)
print(f"check-banned: {len(sys.argv) - 1} files, no banned calls")
EOF
