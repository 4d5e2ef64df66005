/*
 * buf.h - capped, growable byte buffers (in the manner of curl's dynbuf).
 *
 * Every buffer filled from outside bytes grows through cm_buf with a maximum size: appending past
 * `max` fails with CM_ETOOBIG and leaves the buffer as it was. The data is always NUL-terminated
 * (the NUL is not counted in len), so text can be used as a C string.
 * Not thread-safe; one owner at a time.
 */
#ifndef CM_BUF_H
#define CM_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "cm/err.h"

typedef struct cm_buf {
	char  *data; /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* largest len allowed */
} cm_buf;

void cm_buf_init(cm_buf *b, size_t max);
void cm_buf_fini(cm_buf *b);  /* frees the data; the buffer can be used again after init */
void cm_buf_reset(cm_buf *b); /* len = 0, keeps the memory */

/* Makes room for `extra` more bytes at once (a line whose usual size is known grows by one
 * allocation instead of doubling from 64). */
CM_MUSTCHECK cm_err cm_buf_reserve(cm_buf *b, size_t extra);
CM_MUSTCHECK cm_err cm_buf_append(cm_buf *b, const void *p, size_t n);
CM_MUSTCHECK cm_err cm_buf_appends(cm_buf *b, const char *s);
CM_MUSTCHECK cm_err cm_buf_printf(cm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
CM_MUSTCHECK cm_err cm_buf_vprintf(cm_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Appends v in decimal (no printf: for lines written per request). */
CM_MUSTCHECK cm_err cm_buf_append_u64(cm_buf *b, unsigned long long v);

/* Appends s as the inside of a JSON string (quotes not included), escaping as JSON requires. */
CM_MUSTCHECK cm_err cm_buf_append_json_str(cm_buf *b, const char *s);

/* Takes the data out (caller frees with free()); the buffer is left empty. Never NULL on CM_OK. */
CM_MUSTCHECK cm_err cm_buf_take(cm_buf *b, char **out, size_t *len);

#endif
