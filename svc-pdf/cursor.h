/*
 * cursor.h - the v1 list's keyset cursor: opaque to clients, base64url of
 * "v1|<created_at UTC, microseconds>|<document id>". Decoding checks the exact shape, so a
 * tampered cursor is CM_EINVAL, never SQL trouble.
 */
#ifndef PDF_CURSOR_H
#define PDF_CURSOR_H

#include <stddef.h>

#include "cm/err.h"

#define PDF_CURSOR_TS_LEN 26 /* "YYYY-MM-DD HH:MM:SS.ffffff" */
#define PDF_CURSOR_MAX 128   /* encoded length, with NUL */

/* ts: PDF_CURSOR_TS_LEN characters as above; id: a textual UUID. */
CM_MUSTCHECK cm_err pdf_cursor_encode(const char *ts, const char *id, char out[PDF_CURSOR_MAX]);
CM_MUSTCHECK cm_err pdf_cursor_decode(const char *cursor, char ts[PDF_CURSOR_TS_LEN + 1],
                                      char id[37]);

#endif
