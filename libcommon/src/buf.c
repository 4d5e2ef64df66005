/*
 * buf.c - capped growable buffers.
 *
 * DESIGN: `data` stays NULL until the first append; after that it always holds len bytes plus a
 * NUL. Growth doubles the capacity (starting at 64 bytes) but never beyond max + 1, and every
 * append checks `max` before touching the buffer, so a failed append (CM_ETOOBIG or CM_ENOMEM)
 * leaves data, len and cap exactly as they were. cm_buf_vprintf formats straight into the spare
 * capacity and grows once when that is too small. cm_buf_append_json_str escapes what JSON
 * requires and replaces bytes that are not valid UTF-8 with U+FFFD, so its output always parses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"

#define CM_BUF_MIN_CAP 64

void
cm_buf_init(cm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
cm_buf_fini(cm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
cm_buf_reset(cm_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the NUL. */
cm_err
cm_buf_reserve(cm_buf *b, size_t extra)
{
	size_t need, cap;
	char  *p;

	if (extra > b->max || b->len > b->max - extra)
		return CM_ETOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return CM_OK;
	cap = b->cap ? b->cap : CM_BUF_MIN_CAP;
	while (cap < need)
		cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	if (cap < need)
		cap = need;
	p = realloc(b->data, cap);
	if (p == NULL)
		return CM_ENOMEM;
	b->data = p;
	b->cap = cap;
	return CM_OK;
}

cm_err
cm_buf_append(cm_buf *b, const void *p, size_t n)
{
	cm_err err = cm_buf_reserve(b, n);

	if (err != CM_OK)
		return err;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return CM_OK;
}

cm_err
cm_buf_appends(cm_buf *b, const char *s)
{
	return cm_buf_append(b, s, strlen(s));
}

cm_err
cm_buf_append_u64(cm_buf *b, unsigned long long v)
{
	char   digits[20]; /* 18446744073709551615 */
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return cm_buf_append(b, digits + n, sizeof(digits) - n);
}

cm_err
cm_buf_vprintf(cm_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t  avail;
	int     n;
	cm_err  err;

	/* Ensure a buffer exists so vsnprintf has somewhere to write the first attempt. */
	err = cm_buf_reserve(b, 0);
	if (err != CM_OK)
		return err;
	avail = b->cap - b->len;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, avail, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return CM_EINVAL;
	}
	if ((size_t)n < avail) {
		if ((size_t)n > b->max - b->len) {
			b->data[b->len] = '\0';
			return CM_ETOOBIG;
		}
		b->len += (size_t)n;
		return CM_OK;
	}
	b->data[b->len] = '\0';
	err = cm_buf_reserve(b, (size_t)n);
	if (err != CM_OK)
		return err;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return CM_EINVAL;
	}
	b->len += (size_t)n;
	return CM_OK;
}

cm_err
cm_buf_printf(cm_buf *b, const char *fmt, ...)
{
	va_list ap;
	cm_err  err;

	va_start(ap, fmt);
	err = cm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return err;
}

/* Length of the valid UTF-8 sequence at s (at most `left` bytes), or 0 when it is not valid. */
static size_t
cm_utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t        n;
	uint32_t      cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

cm_err
cm_buf_append_json_str(cm_buf *b, const char *s)
{
	static const char    hexd[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t               left = strlen(s);
	size_t               start_len = b->len;
	cm_err               err = CM_OK;

	while (left > 0) {
		size_t run = 0, seq;
		char   esc[7];
		size_t elen = 0;

		/* Copy the longest run that needs no escaping in one append. */
		while (run < left) {
			unsigned char c = p[run];
			if (c < 0x20 || c == '"' || c == '\\')
				break;
			seq = cm_utf8_seq(p + run, left - run);
			if (seq == 0)
				break;
			run += seq;
		}
		if (run > 0) {
			err = cm_buf_append(b, p, run);
			if (err != CM_OK)
				goto out;
			p += run;
			left -= run;
			continue;
		}
		switch (p[0]) {
		case '"':
			memcpy(esc, "\\\"", 2);
			elen = 2;
			break;
		case '\\':
			memcpy(esc, "\\\\", 2);
			elen = 2;
			break;
		case '\b':
			memcpy(esc, "\\b", 2);
			elen = 2;
			break;
		case '\f':
			memcpy(esc, "\\f", 2);
			elen = 2;
			break;
		case '\n':
			memcpy(esc, "\\n", 2);
			elen = 2;
			break;
		case '\r':
			memcpy(esc, "\\r", 2);
			elen = 2;
			break;
		case '\t':
			memcpy(esc, "\\t", 2);
			elen = 2;
			break;
		default:
			if (p[0] < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hexd[p[0] >> 4];
				esc[5] = hexd[p[0] & 0xf];
				elen = 6;
			} else {
				memcpy(esc, "\\ufffd", 6); /* not valid UTF-8 */
				elen = 6;
			}
			break;
		}
		err = cm_buf_append(b, esc, elen);
		if (err != CM_OK)
			goto out;
		p++;
		left--;
	}
out:
	if (err != CM_OK) {
		/* All or nothing: undo the part already appended. */
		b->len = start_len;
		if (b->data != NULL)
			b->data[b->len] = '\0';
	}
	return err;
}

cm_err
cm_buf_take(cm_buf *b, char **out, size_t *len)
{
	if (b->data == NULL) {
		char *p = malloc(1);
		if (p == NULL)
			return CM_ENOMEM;
		p[0] = '\0';
		*out = p;
		if (len != NULL)
			*len = 0;
		return CM_OK;
	}
	*out = b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return CM_OK;
}
