/*
 * multipart.c - multipart/form-data bodies in memory (see multipart.h for the rules).
 *
 * DESIGN. One forward pass, positions as size_t offsets that never pass len:
 *   first dash-boundary -> { boundary-line end -> header lines -> data up to next delimiter }*
 *   -> close delimiter.
 * Header values are read with a tiny cursor (span) over [p, end): tokens, quoted strings and
 * ";"-separated parameters; the same lexer serves the request's Content-Type.
 *
 * Finding the delimiter "\r\n--boundary" is memchr for '\r' then a compare. That is linear:
 * every candidate that gets past "\r\n--" is at least 4 bytes from the previous one (the boundary
 * has no CR, '\n' and '-' are not CR), so at most len/4 candidates cost at most 70 compared
 * bytes each, whatever the body holds. Header lines are capped (CM_MP_MAX_LINE), so reading
 * them is bounded per part, and parts are capped too.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cm/limits.h"
#include "cm/multipart.h"

#define NONE ((size_t)-1)

/* RFC 7230 tchar. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* An unquoted parameter value: a token, or the other RFC 2046 bchars some clients leave bare. */
static bool
is_vchar_bare(unsigned char c)
{
	return is_tchar(c) || (c != '\0' && strchr("()/:=?,", c) != NULL);
}

/* RFC 2046 bchars (space included). */
static bool
is_bchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

/* Bytes allowed in a header line: HTAB, visible ASCII, space, obs-text (UTF-8 filenames). */
static bool
is_hdr_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

typedef struct span {
	const char *p;
	const char *end;
} span;

typedef struct param {
	const char *name;
	size_t      name_len;
	const char *val; /* token, or the inside of the quotes with escapes left in place */
	size_t      val_len;
} param;

static void
skip_ows(span *s)
{
	while (s->p < s->end && is_ows((unsigned char)*s->p))
		s->p++;
}

static bool
take_run(span *s, bool (*ok)(unsigned char), const char **t, size_t *n)
{
	const char *start = s->p;

	while (s->p < s->end && ok((unsigned char)*s->p))
		s->p++;
	*t = start;
	*n = (size_t)(s->p - start);
	return *n > 0;
}

/* s->p is at the opening quote. Header characters were checked by the caller. */
static bool
take_quoted(span *s, const char **t, size_t *n)
{
	const char *p = s->p + 1;

	while (p < s->end) {
		if (*p == '"') {
			*t = s->p + 1;
			*n = (size_t)(p - *t);
			s->p = p + 1;
			return true;
		}
		if (*p == '\\') {
			if (s->end - p < 2)
				return false;
			p += 2;
		} else {
			p++;
		}
	}
	return false;
}

/* 1: *pr is the next parameter; 0: end of the value; -1: malformed. Empty parameters (";;",
 * a trailing ";") are skipped. No whitespace around '=' (RFC 7231 3.1.1.1). */
static int
next_param(span *s, param *pr)
{
	for (;;) {
		skip_ows(s);
		if (s->p == s->end)
			return 0;
		if (*s->p != ';')
			return -1;
		s->p++;
		skip_ows(s);
		if (s->p != s->end && *s->p != ';')
			break;
	}
	if (!take_run(s, is_tchar, &pr->name, &pr->name_len) || s->p == s->end || *s->p != '=')
		return -1;
	s->p++;
	if (s->p != s->end && *s->p == '"')
		return take_quoted(s, &pr->val, &pr->val_len) ? 1 : -1;
	return take_run(s, is_vchar_bare, &pr->val, &pr->val_len) ? 1 : -1;
}

static bool
ieq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

bool
cm_mp_unescape(const char *raw, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (out == NULL || outlen == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\\' && i + 1 < len)
			i++;
		if (o + 1 >= outlen) {
			out[0] = '\0';
			return false;
		}
		out[o++] = raw[i];
	}
	out[o] = '\0';
	return true;
}

/* raw (escapes in place) decodes to exactly the C string field. */
static bool
unescaped_equal(const char *raw, size_t len, const char *field)
{
	size_t f = 0;

	for (size_t i = 0; i < len; i++, f++) {
		if (raw[i] == '\\' && i + 1 < len)
			i++;
		if (field[f] == '\0' || field[f] != raw[i])
			return false;
	}
	return field[f] == '\0';
}

/* Length of a valid boundary (1..70 bchars, not ending in space), or 0. */
static size_t
boundary_len(const char *b)
{
	size_t n = strnlen(b, CM_MP_MAX_BOUNDARY + 1);

	if (n == 0 || n > CM_MP_MAX_BOUNDARY || b[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_bchar((unsigned char)b[i]))
			return 0;
	return n;
}

bool
cm_multipart_boundary(const char *content_type, char *out, size_t outlen)
{
	char        tmp[CM_MP_MAX_BOUNDARY + 2];
	bool        seen = false;
	span        s;
	param       pr;
	const char *t1, *t2;
	size_t      n1, n2, n;
	int         r;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (content_type == NULL || out == NULL)
		return false;
	n = strnlen(content_type, CM_MAX_HEADER_VALUE + 1);
	if (n > CM_MAX_HEADER_VALUE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hdr_char((unsigned char)content_type[i]))
			return false;
	s.p = content_type;
	s.end = content_type + n;
	skip_ows(&s);
	if (!take_run(&s, is_tchar, &t1, &n1) || s.p == s.end || *s.p++ != '/' ||
	    !take_run(&s, is_tchar, &t2, &n2) || !ieq(t1, n1, "multipart") ||
	    !ieq(t2, n2, "form-data"))
		return false;
	while ((r = next_param(&s, &pr)) == 1) {
		if (!ieq(pr.name, pr.name_len, "boundary"))
			continue;
		if (seen)
			return false; /* two boundaries: which one would the sender mean? */
		seen = true;
		if (!cm_mp_unescape(pr.val, pr.val_len, tmp, sizeof(tmp)))
			return false;
	}
	if (r < 0 || !seen || (n = boundary_len(tmp)) == 0 || n >= outlen)
		return false;
	memcpy(out, tmp, n + 1);
	return true;
}

/* One parse: the body, the boundary, where to put the reason. */
typedef struct mp {
	const uint8_t *b;
	size_t         len;
	const char    *bd;
	size_t         blen;
	char          *why;
	size_t         whylen;
} mp;

static cm_err
fail(const mp *m, int part, const char *msg)
{
	if (m->why != NULL && m->whylen > 0) {
		if (part > 0)
			snprintf(m->why, m->whylen, "multipart part %d: %s", part, msg);
		else
			snprintf(m->why, m->whylen, "multipart: %s", msg);
	}
	return CM_EINVAL;
}

/* Offset of the next "\r\n--boundary" at or after from, or NONE. */
static size_t
find_delim(const mp *m, size_t from)
{
	size_t need = 4 + m->blen;

	while (from <= m->len && m->len - from >= need) {
		const uint8_t *cr = memchr(m->b + from, '\r', m->len - from - need + 1);

		if (cr == NULL)
			return NONE;
		if (cr[1] == '\n' && cr[2] == '-' && cr[3] == '-' &&
		    memcmp(cr + 4, m->bd, m->blen) == 0)
			return (size_t)(cr - m->b);
		from = (size_t)(cr - m->b) + 1;
	}
	return NONE;
}

/* *pos is just after "--boundary". 1: close delimiter; 0: a part follows, *pos at its headers. */
static int
after_boundary(const mp *m, size_t *pos, int part, cm_err *err)
{
	size_t p = *pos;

	if (m->len - p >= 2 && m->b[p] == '-' && m->b[p + 1] == '-')
		return 1;
	while (p < m->len && is_ows(m->b[p]))
		p++;
	if (m->len - p >= 2 && m->b[p] == '\r' && m->b[p + 1] == '\n') {
		*pos = p + 2;
		return 0;
	}
	if (m->len - p < 2)
		*err = fail(m, part, "body ends in a boundary line (no closing boundary)");
	else
		*err = fail(m, part, "boundary followed by other bytes than CRLF or \"--\"");
	return -1;
}

static cm_err
parse_disposition(const mp *m, int part, span *s, cm_mp_part *p)
{
	const char *t;
	size_t      n;
	param       pr;
	int         r;

	if (!take_run(s, is_tchar, &t, &n) || !ieq(t, n, "form-data"))
		return fail(m, part, "Content-Disposition is not form-data");
	while ((r = next_param(s, &pr)) == 1) {
		if (ieq(pr.name, pr.name_len, "name")) {
			if (p->name != NULL)
				return fail(m, part, "two name parameters");
			p->name = pr.val;
			p->name_len = pr.val_len;
		} else if (ieq(pr.name, pr.name_len, "filename")) {
			if (p->filename != NULL)
				return fail(m, part, "two filename parameters");
			p->filename = pr.val;
			p->filename_len = pr.val_len;
		}
	}
	if (r < 0)
		return fail(m, part, "malformed Content-Disposition");
	if (p->name == NULL)
		return fail(m, part, "Content-Disposition without name");
	return CM_OK;
}

/* *pos is at the first header line; on CM_OK it is just after the blank line. */
static cm_err
parse_headers(const mp *m, int part, size_t *pos, cm_mp_part *p)
{
	bool   have_cd = false;
	int    nh = 0;
	cm_err err;

	for (;;) {
		size_t      start = *pos, avail = m->len - start, lim, i;
		const char *line = (const char *)m->b + start;
		const char *t;
		size_t      n;
		span        s;

		lim = avail < CM_MP_MAX_LINE + 1 ? avail : CM_MP_MAX_LINE + 1;
		for (i = 0; i < lim && line[i] != '\r'; i++) {
			if (line[i] == '\n')
				return fail(m, part, "bare LF in part headers");
			if (!is_hdr_char((unsigned char)line[i]))
				return fail(m, part, "control character in part headers");
		}
		if (i == lim)
			return fail(m, part,
			            avail <= CM_MP_MAX_LINE
			                ? "truncated part headers (no blank line)"
			                : "part header line too long");
		if (avail - i < 2)
			return fail(m, part, "truncated part headers (no blank line)");
		if (line[i + 1] != '\n')
			return fail(m, part, "bare CR in part headers");
		*pos = start + i + 2;
		if (i == 0)
			return have_cd ? CM_OK : fail(m, part, "no Content-Disposition");
		if (++nh > CM_MP_MAX_HEADERS)
			return fail(m, part, "too many part headers");
		s.p = line;
		s.end = line + i;
		if (!take_run(&s, is_tchar, &t, &n) || s.p == s.end || *s.p++ != ':')
			return fail(m, part, "malformed part header"); /* folded lines included */
		skip_ows(&s);
		while (s.end > s.p && is_ows((unsigned char)s.end[-1]))
			s.end--;
		if (ieq(t, n, "Content-Disposition")) {
			if (have_cd)
				return fail(m, part, "two Content-Disposition headers");
			have_cd = true;
			if ((err = parse_disposition(m, part, &s, p)) != CM_OK)
				return err;
		} else if (ieq(t, n, "Content-Type")) {
			if (p->content_type != NULL)
				return fail(m, part, "two Content-Type headers");
			p->content_type = s.p;
			p->content_type_len = (size_t)(s.end - s.p);
		}
	}
}

cm_err
cm_multipart_find(const uint8_t *body, size_t len, const char *boundary, const char *field,
                  cm_mp_part *out, char *why, size_t whylen)
{
	mp         m = {body, len, boundary, 0, why, whylen};
	cm_mp_part cur, hit;
	size_t     pos, d;
	int        nparts = 0, found = 0;
	cm_err     err = CM_OK;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((body == NULL && len > 0) || boundary == NULL || field == NULL || out == NULL)
		return fail(&m, 0, "bad arguments");
	if ((m.blen = boundary_len(boundary)) == 0)
		return fail(&m, 0, "invalid boundary");
	memset(&hit, 0, sizeof(hit));

	if (len >= 2 + m.blen && body[0] == '-' && body[1] == '-' &&
	    memcmp(body + 2, boundary, m.blen) == 0)
		pos = 2 + m.blen;
	else if ((d = find_delim(&m, 0)) != NONE)
		pos = d + 4 + m.blen;
	else
		return fail(&m, 0, "missing first boundary");

	for (;;) {
		int r = after_boundary(&m, &pos, nparts, &err);

		if (r < 0)
			return err;
		if (r == 1)
			break;
		if (++nparts > CM_MP_MAX_PARTS)
			return fail(&m, 0, "too many parts");
		memset(&cur, 0, sizeof(cur));
		if ((err = parse_headers(&m, nparts, &pos, &cur)) != CM_OK)
			return err;
		if ((d = find_delim(&m, pos)) == NONE)
			return fail(&m, nparts, "no closing boundary");
		cur.data = body + pos;
		cur.len = d - pos;
		if (unescaped_equal(cur.name, cur.name_len, field) && found++ == 0)
			hit = cur;
		pos = d + 4 + m.blen;
	}
	if (found > 1) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "multipart: field \"%s\" appears %d times", field,
			         found);
		return CM_EEXIST;
	}
	if (found == 0) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "multipart: no field \"%s\"", field);
		return CM_ENOTFOUND;
	}
	*out = hit;
	return CM_OK;
}
