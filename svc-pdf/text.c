/*
 * text.c - building a document's text page by page, and UTF-8 hygiene.
 *
 * DESIGN: all pages live in one capped cm_buf, each followed by a NUL, so a 5,000-page document
 * costs one growing allocation instead of thousands. Only offsets are recorded while the buffer
 * grows (it may move); pdf_text_finish() turns them into pointers. Every byte that enters goes
 * through one filter (pdf_text_put_rune): that is the single place where NULs, control
 * characters and invalid code points are kept out of PostgreSQL.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "text.h"

void
pdf_text_init(pdf_text *t, size_t max_text)
{
	memset(t, 0, sizeof(*t));
	cm_buf_init(&t->buf, max_text);
}

void
pdf_text_fini(pdf_text *t)
{
	for (int i = 0; i < PDF_META_COUNT; i++)
		free(t->meta.v[i]);
	free(t->page);
	free(t->page_len);
	free(t->off);
	cm_buf_fini(&t->buf);
	memset(t, 0, sizeof(*t));
}

cm_err
pdf_text_begin_page(pdf_text *t)
{
	size_t *off;
	size_t  cap;
	cm_err  err = CM_OK;

	if (t->in_page || t->npages == INT32_MAX) {
		err = CM_EINTERNAL;
		goto out;
	}
	if ((size_t)t->npages == t->cap_pages) {
		cap = t->cap_pages == 0 ? 64 : t->cap_pages * 2;
		if ((off = realloc(t->off, cap * sizeof(*off))) == NULL) {
			err = CM_ENOMEM;
			goto out;
		}
		t->off = off;
		t->cap_pages = cap;
	}
	t->off[t->npages] = t->buf.len;
	t->page_start = t->buf.len;
	t->in_page = true;
out:
	return err;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

cm_err
pdf_text_put_rune(pdf_text *t, int32_t c)
{
	char   enc[4];
	size_t n;

	if (c == '\n')
		return pdf_text_newline(t);
	if ((c < 0x20 && c != '\t') || (c >= 0x7f && c < 0xa0))
		return CM_OK; /* NUL, C0 and C1 controls */
	if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff || c < 0)
		c = 0xfffd;
	if (c == ' ' || c == '\t') {
		/* No blanks at the start of a line, and no runs of them. */
		if (t->buf.len == t->page_start || t->buf.data[t->buf.len - 1] == '\n' ||
		    is_blank(t->buf.data[t->buf.len - 1]))
			return CM_OK;
	} else if (c != 0xa0 && c != 0x3000) {
		t->has_text = true;
	}
	n = pdf_utf8_encode(c, enc);
	return cm_buf_append(&t->buf, enc, n);
}

cm_err
pdf_text_newline(pdf_text *t)
{
	while (t->buf.len > t->page_start && is_blank(t->buf.data[t->buf.len - 1]))
		t->buf.len--;
	/* At most one empty line in a row (paragraph separator), none at the top of a page. */
	if (t->buf.len == t->page_start)
		return CM_OK;
	if (t->buf.len >= t->page_start + 2 && t->buf.data[t->buf.len - 1] == '\n' &&
	    t->buf.data[t->buf.len - 2] == '\n')
		return CM_OK;
	return cm_buf_append(&t->buf, "\n", 1);
}

cm_err
pdf_text_end_page(pdf_text *t)
{
	if (!t->in_page)
		return CM_EINTERNAL;
	while (t->buf.len > t->page_start &&
	       (is_blank(t->buf.data[t->buf.len - 1]) || t->buf.data[t->buf.len - 1] == '\n'))
		t->buf.len--;
	t->in_page = false;
	t->npages++;
	/* The NUL that ends the page is part of the buffer (cm_buf's own NUL is not counted). */
	return cm_buf_append(&t->buf, "", 1);
}

cm_err
pdf_text_add_page(pdf_text *t, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t               i = 0, k;
	int32_t              cp = 0;
	cm_err               err = pdf_text_begin_page(t);

	while (err == CM_OK && i < n) {
		if ((k = pdf_utf8_decode(p + i, n - i, &cp)) == 0) {
			i++; /* drop one invalid byte */
			continue;
		}
		err = pdf_text_put_rune(t, cp);
		i += k;
	}
	if (err == CM_OK)
		err = pdf_text_end_page(t);
	return err;
}

void
pdf_text_last_page(const pdf_text *t, const char **s, size_t *n)
{
	size_t o = t->npages > 0 ? t->off[t->npages - 1] : 0;

	*s = t->buf.data + o;
	*n = t->npages > 0 ? t->buf.len - 1 - o : 0;
}

cm_err
pdf_text_finish(pdf_text *t)
{
	cm_err err = CM_OK;

	if (t->in_page) {
		err = CM_EINTERNAL;
		goto out;
	}
	free(t->page);
	free(t->page_len);
	t->page = calloc((size_t)t->npages + 1, sizeof(*t->page));
	t->page_len = calloc((size_t)t->npages + 1, sizeof(*t->page_len));
	if (t->page == NULL || t->page_len == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	t->text_length = 0;
	for (int i = 0; i < t->npages; i++) {
		size_t end = (i + 1 < t->npages) ? t->off[i + 1] : t->buf.len;
		t->page[i] = t->buf.data + t->off[i];
		t->page_len[i] = end - t->off[i] - 1; /* without the page's NUL */
		t->text_length += pdf_utf8_count(t->page[i], t->page_len[i]);
	}
out:
	return err;
}

cm_err
pdf_text_set_meta(pdf_text *t, pdf_meta_field f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t               n, i = 0, k, o = 0;
	int32_t              cp = 0;
	char                *v = NULL;
	cm_err               err = CM_OK;

	if (f < 0 || f >= PDF_META_COUNT) {
		err = CM_EINTERNAL;
		goto out;
	}
	free(t->meta.v[f]);
	t->meta.v[f] = NULL;
	if (s == NULL)
		goto out;
	n = strlen(s);
	if ((v = malloc(n + 1)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	while (i < n && o + 4 <= PDF_MAX_META) {
		if ((k = pdf_utf8_decode(p + i, n - i, &cp)) == 0) {
			i++;
			continue;
		}
		i += k;
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			cp = ' ';
		if (cp == ' ' && (o == 0 || v[o - 1] == ' '))
			continue;
		o += pdf_utf8_encode(cp, v + o);
	}
	while (o > 0 && v[o - 1] == ' ')
		o--;
	v[o] = '\0';
	if (o > 0) {
		t->meta.v[f] = v; /* owned by t from now on */
		v = NULL;
	}
out:
	free(v);
	return err;
}

size_t
pdf_utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
	size_t  len, i;
	int32_t c, min;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t
pdf_utf8_encode(int32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

size_t
pdf_utf8_floor(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t               i = n;

	/* Step back over continuation bytes to the lead byte at or before n, then keep that whole
	 * sequence only when it ends at or before n. */
	while (i > 0 && (p[i - 1] & 0xc0) == 0x80 && n - i < 3)
		i--;
	if (i > 0 && p[i - 1] >= 0xc0) {
		size_t len = (p[i - 1] & 0xe0) == 0xc0 ? 2 : (p[i - 1] & 0xf0) == 0xe0 ? 3 : 4;
		if (i - 1 + len > n)
			return i - 1;
		return n;
	}
	return n;
}

int64_t
pdf_utf8_count(const char *s, size_t n)
{
	int64_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}
