/*
 * filename.h - the display name of an upload. It is only ever shown and matched, never used as a
 * path (files on disk are named by their sha256).
 */
#ifndef PDF_FILENAME_H
#define PDF_FILENAME_H

#include <stddef.h>

/* Writes the sanitised form of in (NULL = "") to out (outlen >= PDF_MAX_FILENAME + 1):
 * everything up to the last '/' or '\' is dropped; invalid UTF-8, control characters (C0, DEL,
 * C1) and bidirectional overrides are removed; white space at both ends is trimmed; "." and ".."
 * become empty; the result is cut to PDF_MAX_FILENAME bytes on a character boundary, keeping a
 * ".pdf" extension; an empty result becomes "document.pdf". Returns strlen(out). */
size_t pdf_filename_sanitize(const char *in, char *out, size_t outlen);

#endif
