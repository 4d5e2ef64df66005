/*
 * clientaddr.c - trusted-proxy ranges and the X-Forwarded-For walk (clientaddr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cm/util.h"
#include "clientaddr.h"

/* Parses one textual address (IPv4-mapped IPv6 becomes IPv4). */
static bool
addr_parse(const char *s, int *family, uint8_t out[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		if (memcmp(out, mapped, sizeof(mapped)) == 0) {
			memmove(out, out + 12, 4);
			*family = AF_INET;
		}
		return true;
	}
	return false;
}

static cm_err
cidr_parse(const char *s, size_t len, edge_cidr *c)
{
	char        buf[EDGE_ADDR_LEN + 8];
	const char *slash;
	int64_t     bits;
	int         max;

	if (len == 0 || len >= sizeof(buf))
		return CM_EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		buf[slash - buf] = '\0';
	if (!addr_parse(buf, &c->family, c->addr))
		return CM_EINVAL;
	max = c->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		bits = max;
	else if (!cm_parse_i64(slash + 1, &bits) || bits < 0 || bits > max)
		return CM_EINVAL;
	c->bits = (int)bits;
	return CM_OK;
}

cm_err
edge_cidrs_parse(const char *s, edge_cidrs *out)
{
	out->n = 0;
	while (s != NULL && *s != '\0') {
		size_t len;
		while (*s == ' ' || *s == ',')
			s++;
		len = strcspn(s, ", ");
		if (len == 0)
			break;
		if (out->n == EDGE_MAX_TRUSTED || cidr_parse(s, len, &out->v[out->n]) != CM_OK)
			return CM_EINVAL;
		out->n++;
		s += len;
	}
	return CM_OK;
}

static bool
cidr_match(const edge_cidr *c, int family, const uint8_t a[16])
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family || memcmp(c->addr, a, (size_t)full) != 0)
		return false;
	return rest == 0 || ((c->addr[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool
edge_cidrs_contain(const edge_cidrs *c, const char *addr)
{
	uint8_t a[16];
	int     family;

	if (c->n == 0 || !addr_parse(addr, &family, a))
		return false;
	for (int i = 0; i < c->n; i++)
		if (cidr_match(&c->v[i], family, a))
			return true;
	return false;
}

void
edge_client_addr(const edge_cidrs *trusted, const char *peer, const char *xff, char *out,
                 size_t outlen)
{
	char        hop[EDGE_ADDR_LEN];
	const char *end;

	cm_strlcpy(out, peer, outlen);
	if (xff == NULL || !edge_cidrs_contain(trusted, peer))
		return;
	/* Right to left: the nearest hop not a trusted proxy is the client. */
	end = xff + strlen(xff);
	for (;;) {
		const char *start = end;
		uint8_t     a[16];
		int         family;
		size_t      len;

		while (start > xff && start[-1] != ',')
			start--;
		{
			const char *p = start;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			len = (size_t)(end - p);
			while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
				len--;
			/* A malformed hop ends the walk at the last address we could trust. */
			if (len == 0 || len >= sizeof(hop))
				return;
			memcpy(hop, p, len);
			hop[len] = '\0';
		}
		if (!addr_parse(hop, &family, a))
			return;
		cm_strlcpy(out, hop, outlen);
		if (!edge_cidrs_contain(trusted, hop) || start == xff)
			return;
		end = start - 1; /* the comma */
	}
}

void
edge_peer_text(const struct sockaddr *sa, char out[EDGE_ADDR_LEN])
{
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		/* Every request formats its peer: inet_ntop's IPv4 path is a sprintf. */
		const uint8_t *b =
		    (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		size_t n = 0;
		for (int i = 0; i < 4; i++) {
			if (i > 0)
				out[n++] = '.';
			if (b[i] >= 100)
				out[n++] = (char)('0' + b[i] / 100);
			if (b[i] >= 10)
				out[n++] = (char)('0' + b[i] / 10 % 10);
			out[n++] = (char)('0' + b[i] % 10);
		}
		out[n] = '\0';
	} else if (sa->sa_family == AF_INET6 &&
	           inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
	                     out, EDGE_ADDR_LEN) == NULL) {
		out[0] = '\0';
	}
}
