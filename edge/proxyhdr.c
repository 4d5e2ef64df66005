/*
 * proxyhdr.c - header filtering and redirect rewriting for the frontend proxy (proxyhdr.h).
 *
 * Origins are compared parsed, never as text prefixes: "http://localhost:3100.evil.com/" and
 * "http://localhost:3100@evil.com/" name other hosts and must pass unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxyhdr.h"

/* Dropped in both directions (RFC 9110 7.6.1, plus the framing the proxy redoes). */
static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive",     "TE", "Trailer", "Transfer-Encoding",
    "Upgrade",    "Content-Length", NULL};
static const char *const request_own[] = {"Host",
                                          "Expect",
                                          "X-Forwarded-For",
                                          "X-Forwarded-Proto",
                                          "X-Forwarded-Host",
                                          "Forwarded",
                                          "X-Request-Id",
                                          "X-User-Id",
                                          NULL};
static const char *const response_own[] = {"Content-Type", "X-Request-Id", NULL};

static bool
in_list(const char *const *list, const char *name)
{
	for (; *list != NULL; list++) {
		if (strcasecmp(*list, name) == 0)
			return true;
	}
	return false;
}

/* True when the comma-separated list names name (tokens trimmed, case-insensitive). */
static bool
token_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list != NULL && *list != '\0') {
		const char *end = strchr(list, ',');
		size_t      len = end != NULL ? (size_t)(end - list) : strlen(list);

		while (len > 0 && (*list == ' ' || *list == '\t')) {
			list++;
			len--;
		}
		while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(list, name, n) == 0)
			return true;
		list = end != NULL ? end + 1 : NULL;
	}
	return false;
}

bool
edge_proxy_header_passes(edge_proxy_dir dir, const char *name, const char *connection)
{
	if (name == NULL || name[0] == '\0' || in_list(hop_by_hop, name) ||
	    strncasecmp(name, "Proxy-", 6) == 0 || token_listed(connection, name))
		return false;
	return !in_list(dir == EDGE_PROXY_REQUEST ? request_own : response_own, name);
}

typedef struct origin {
	bool        https;
	const char *host; /* inside the parsed text, hostlen bytes ("[::1]" keeps its brackets) */
	size_t      hostlen;
	unsigned    port;
	const char *rest; /* path, query and fragment: "" or from '/', '?' or '#' */
} origin;

static bool
host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.';
}

/* Parses "host[:port]" (len bytes); the host is a name, an IPv4 address or a bracketed IPv6. */
static bool
parse_authority(const char *a, size_t len, bool https, origin *o)
{
	size_t i = 0;

	if (len > 0 && a[0] == '[') {
		while (i < len && a[i] != ']') {
			char c = a[i];
			if (i > 0 && !(c == ':' || c == '.' || (c >= '0' && c <= '9') ||
			               (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
				return false;
			i++;
		}
		if (i == len || i < 2)
			return false;
		i++;
	} else {
		while (i < len && host_char(a[i]))
			i++;
		if (i == 0)
			return false;
	}
	o->host = a;
	o->hostlen = i;
	o->port = https ? 443 : 80;
	if (i == len)
		return true;
	if (a[i] != ':')
		return false;
	if (++i == len)
		return true; /* "host:" is the default port (RFC 3986 3.2.3) */
	o->port = 0;
	for (; i < len; i++) {
		if (a[i] < '0' || a[i] > '9' || o->port > 6553)
			return false;
		o->port = o->port * 10 + (unsigned)(a[i] - '0');
	}
	return o->port > 0 && o->port <= 65535;
}

static bool
parse_url(const char *url, origin *o)
{
	const char *a;
	size_t      len;

	if (strncasecmp(url, "http://", 7) == 0) {
		o->https = false;
		a = url + 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		o->https = true;
		a = url + 8;
	} else {
		return false;
	}
	len = strcspn(a, "/?#");
	o->rest = a + len;
	return parse_authority(a, len, o->https, o);
}

static bool
format_origin(const origin *o, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s://%.*s:%u", o->https ? "https" : "http", (int)o->hostlen,
	                 o->host, o->port);

	if (n < 0 || (size_t)n >= outlen)
		return false;
	for (char *p = out; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return true;
}

bool
edge_proxy_origin(const char *url, char *out, size_t outlen)
{
	origin o;

	return url != NULL && parse_url(url, &o) && format_origin(&o, out, outlen);
}

static bool
host_is(const origin *o, const char *name)
{
	return o->hostlen == strlen(name) && strncasecmp(o->host, name, o->hostlen) == 0;
}

/* Where a Next.js server believes it lives when nobody told it otherwise. */
static bool
loopback(const origin *o)
{
	return !o->https &&
	       (host_is(o, "localhost") || host_is(o, "127.0.0.1") || host_is(o, "[::1]"));
}

bool
edge_proxy_rewrite_location(const char *value, const char *upstream_origin,
                            const char *public_origin, char *out, size_t outlen)
{
	origin o;
	char   norm[EDGE_ORIGIN_MAX];
	int    n;

	if (value == NULL || !parse_url(value, &o))
		return false;
	if (!loopback(&o) && !(upstream_origin != NULL && format_origin(&o, norm, sizeof(norm)) &&
	                       strcmp(norm, upstream_origin) == 0))
		return false;
	n = snprintf(out, outlen, "%s%s", public_origin, o.rest);
	return n >= 0 && (size_t)n < outlen;
}

const char *
edge_proxy_scheme(const char *forwarded_proto, bool trusted)
{
	const char *p;

	if (!trusted || forwarded_proto == NULL)
		return "http";
	/* The first proxy's word is the browser's: "https, http" came in on TLS. */
	p = forwarded_proto + strspn(forwarded_proto, " \t");
	return strcspn(p, ", \t") == 5 && strncasecmp(p, "https", 5) == 0 ? "https" : "http";
}

bool
edge_proxy_public_origin(const char *scheme, const char *host, char *out, size_t outlen)
{
	origin o;
	int    n;

	if (host == NULL || !parse_authority(host, strlen(host), false, &o))
		return false;
	n = snprintf(out, outlen, "%s://%s", scheme, host);
	return n >= 0 && (size_t)n < outlen;
}
