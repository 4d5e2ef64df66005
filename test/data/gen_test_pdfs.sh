#!/usr/bin/env bash
# Generates test and benchmark PDFs with Debian tools (mupdf-tools' mutool, ghostscript's ps2pdf).
# Nothing generated is committed: tests and benches call this at run time into a temp/build dir.
#
# usage:
#   gen_test_pdfs.sh set OUTDIR             the extractor's test set (see below)
#   gen_test_pdfs.sh real OUT.pdf            real English prose, about 90-130 pages (see real_pdf)
#   gen_test_pdfs.sh text OUT.pdf NPAGES [mutool|ps2pdf]
#                                           an NPAGES-page text document (default ps2pdf: embedded
#                                           fonts, like real manuals; mutool: base-14 fonts)
# The set: mutool-text.pdf (3 pages, no metadata), mutool-aes128-user.pdf (user password "secret":
# unreadable), mutool-rc4-owner.pdf (owner password only: readable), mutool-image.pdf (an image,
# no text), gs-text.pdf (5 pages through ghostscript, with Title/Author/Subject/CreationDate).
# Exit 0 when everything was made; 77 when a tool is missing, 1 when a tool failed. The tests
# that use it fail (not skip) on either: scripts/install-deps.sh installs mupdf-tools and
# ghostscript; the rest (awk, mktemp, zcat, fold) is in every Debian base system.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1 || { echo "gen_test_pdfs: $1 not installed" >&2; exit 77; }; }

# PostScript for N pages of deterministic pseudo-text (about 45 lines of 10 words per page).
gen_ps() {
  awk -v pages="$1" 'BEGIN {
    split("the of and to in is that for it as with was on be by this are from or an which at " \
          "system process data value page document extraction memory thread context error " \
          "parser stream object table index buffer limit result server client request reply", w, " ");
    n = length(w); seed = 12345;
    print "%!PS-Adobe-3.0"; print "/Times-Roman findfont 10 scalefont setfont";
    for (p = 1; p <= pages; p++) {
      print "%%Page: " p " " p;
      y = 750;
      printf "72 %d moveto (Chapter %d, page %d) show\n", y, int((p - 1) / 20) + 1, p; y -= 20;
      for (l = 0; l < 45; l++) {
        line = "";
        for (k = 0; k < 10; k++) { seed = (seed * 1103515245 + 12345) % 2147483648; line = line w[int(seed / 65536) % n + 1] " "; }
        if (l % 9 == 8) line = line "end.";
        printf "72 %d moveto (%s) show\n", y, line; y -= 14;
      }
      print "showpage";
    }
  }'
}

# mutool create page files for N pages into DIR; prints their names.
gen_mutool_pages() {
  local dir=$1 pages=$2
  awk -v pages="$pages" -v dir="$dir" 'BEGIN {
    split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau", w, " ");
    n = length(w); seed = 777;
    for (p = 1; p <= pages; p++) {
      f = sprintf("%s/page%05d.txt", dir, p); print f;
      print "%%MediaBox 0 0 612 792" > f; print "%%Font F1 Helvetica" > f;
      print "BT /F1 10 Tf 14 TL 72 750 Td" > f;
      printf "(Page %d of the generated text) Tj T*\n", p > f;
      for (l = 0; l < 45; l++) {
        line = "";
        for (k = 0; k < 10; k++) { seed = (seed * 1103515245 + 12345) % 2147483648; line = line w[int(seed / 65536) % n + 1] " "; }
        printf "(%s) Tj T*\n", line > f;
      }
      print "ET" > f; close(f);
    }
  }'
}

text_pdf() {
  local out=$1 pages=$2 tool=${3:-ps2pdf} tmp
  tmp=$(mktemp -d)
  if [ "$tool" = mutool ]; then
    need mutool
    # shellcheck disable=SC2046
    mutool create -o "$out" $(gen_mutool_pages "$tmp" "$pages") >/dev/null 2>&1
  else
    need ps2pdf
    gen_ps "$pages" > "$tmp/doc.ps"
    ps2pdf "$tmp/doc.ps" "$out"
  fi
  rm -rf "$tmp"
}

# Real English prose: the bash manual typeset by groff (about 90 pages), or, where the manual
# pages are not installed, every licence text under /usr/share/common-licenses (base-files, always
# there) typeset through PostScript (about 130 pages).
real_pdf() {
  local out=$1 tmp man
  need ps2pdf
  tmp=$(mktemp -d)
  man=/usr/share/man/man1/bash.1.gz
  if command -v groff >/dev/null 2>&1 && [ -r "$man" ]; then
    zcat "$man" | groff -man -Tps 2>/dev/null > "$tmp/doc.ps"
  else
    cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/LGPL-2.1 \
        /usr/share/common-licenses/GFDL-1.3 /usr/share/common-licenses/Apache-2.0 \
        /usr/share/common-licenses/MPL-2.0 /usr/share/common-licenses/Artistic 2>/dev/null |
      tr -d '\f\r' | fold -s -w 95 | awk 'BEGIN {
        print "%!PS-Adobe-3.0"; print "/Times-Roman findfont 10 scalefont setfont"; y = 0; p = 0 }
      {
        if (y < 60) { if (p > 0) print "showpage"; p++; print "%%Page: " p " " p; y = 750 }
        gsub(/\\/, "\\\\"); gsub(/\(/, "\\("); gsub(/\)/, "\\)")
        printf "72 %d moveto (%s) show\n", y, $0; y -= 12
      }
      END { print "showpage" }' > "$tmp/doc.ps"
  fi
  ps2pdf "$tmp/doc.ps" "$out"
  rm -rf "$tmp"
}

make_set() {
  local out=$1 tmp
  need mutool
  need ps2pdf
  mkdir -p "$out"
  tmp=$(mktemp -d)
  gen_mutool_pages "$tmp" 3 >/dev/null
  mutool create -o "$tmp/plain.pdf" "$tmp"/page0000{1,2,3}.txt 2>/dev/null
  cp "$tmp/plain.pdf" "$out/mutool-text.pdf"
  mutool clean -E aes-128 -U secret -O owner "$out/mutool-text.pdf" "$out/mutool-aes128-user.pdf" 2>/dev/null
  mutool clean -E rc4-128 -O owner "$out/mutool-text.pdf" "$out/mutool-rc4-owner.pdf" 2>/dev/null
  # An image and no text: a scanned page.
  printf 'P5\n8 8\n255\n' > "$tmp/img.pgm"
  head -c 64 /dev/urandom >> "$tmp/img.pgm"
  printf '%%%%MediaBox 0 0 612 792\n%%%%Image Im1 %s\nq 300 0 0 300 100 300 cm /Im1 Do Q\n' "$tmp/img.pgm" > "$tmp/scan.txt"
  mutool create -o "$out/mutool-image.pdf" "$tmp/scan.txt" 2>/dev/null
  { echo '[ /Title (Generated Title) /Author (Test Author) /Subject (Testing)'
    echo '  /CreationDate (D:20240102030405Z) /DOCINFO pdfmark'
    gen_ps 5 | tail -n +2; } > "$tmp/doc.ps"
  ps2pdf "$tmp/doc.ps" "$out/gs-text.pdf"
  rm -rf "$tmp"
}

case ${1:-} in
  set)  [ $# -eq 2 ] || { echo "usage: $0 set OUTDIR" >&2; exit 2; }; make_set "$2" ;;
  text) [ $# -ge 3 ] || { echo "usage: $0 text OUT.pdf NPAGES [mutool|ps2pdf]" >&2; exit 2; }; text_pdf "$2" "$3" "${4:-ps2pdf}" ;;
  real) [ $# -eq 2 ] || { echo "usage: $0 real OUT.pdf" >&2; exit 2; }; real_pdf "$2" ;;
  *)    echo "usage: $0 set OUTDIR | text OUT.pdf NPAGES [mutool|ps2pdf] | real OUT.pdf" >&2; exit 2 ;;
esac
