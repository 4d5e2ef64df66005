/*
 * query.c - query-string parameters (query.h).
 *
 * DESIGN. One left-to-right scan, no allocation: parameters are split at '&', the name is
 * compared byte for byte (names are ASCII in every route), and the value is decoded while it is
 * copied, counting past the end of buf so the caller can tell a cut value from a whole one (a
 * token must be refused when cut; a search text may be cut).
 */
#include <string.h>

#include "query.h"

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes v[0..len) into buf (cut at buflen - 1); returns the whole decoded length. */
static size_t
decode(const char *v, size_t len, char *buf, size_t buflen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		int  hi, lo;

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len && (hi = hex_digit(v[i + 1])) >= 0 &&
		           (lo = hex_digit(v[i + 2])) >= 0 && (hi | lo) != 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 < buflen)
			buf[o] = c;
		o++;
	}
	if (buflen > 0)
		buf[o < buflen ? o : buflen - 1] = '\0';
	return o;
}

ssize_t
edge_query_get(const char *query, const char *name, char *buf, size_t buflen)
{
	size_t      nlen = strlen(name);
	size_t      qlen = query != NULL ? strcspn(query, "#") : 0;
	const char *p = query, *end = query != NULL ? query + qlen : NULL;

	if (buflen > 0)
		buf[0] = '\0';
	while (p != NULL && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t      len = amp != NULL ? (size_t)(amp - p) : (size_t)(end - p);

		if (len > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
			return (ssize_t)decode(p + nlen + 1, len - nlen - 1, buf, buflen);
		p = amp != NULL ? amp + 1 : NULL;
	}
	return -1;
}
