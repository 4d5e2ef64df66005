/*
 * dns.c - dns+tcp://name:port entries (dns_int.h): parsing, the system lookup, the period.
 *
 * DESIGN. A headless Service answers a name with one address per ready pod; the port is the
 * entry's. Callers look names up on a thread of their own (getaddrinfo may block for seconds),
 * never on a caller's thread or an nng callback.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cm/log.h"
#include "cm/util.h"
#include "dns_int.h"

bool
dns_is_entry(const char *entry)
{
	return strncmp(entry, DNS_SCHEME, strlen(DNS_SCHEME)) == 0;
}

bool
dns_parse(const char *entry, char host[DNS_HOST_MAX], char port[8])
{
	const char *name = entry + strlen(DNS_SCHEME), *colon;
	int64_t     p;

	if (!dns_is_entry(entry) || (colon = strrchr(name, ':')) == NULL || colon == name ||
	    !cm_parse_i64(colon + 1, &p) || p < 1 || p > 65535 ||
	    (size_t)(colon - name) >= DNS_HOST_MAX)
		return false;
	memcpy(host, name, (size_t)(colon - name));
	host[colon - name] = '\0';
	snprintf(port, 8, "%d", (int)p);
	return true;
}

cm_err
dns_lookup(void *arg, const char *name, cm_rpc_addrs *out)
{
	struct addrinfo hints, *res = NULL;
	int             rv;

	(void)arg;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rv = getaddrinfo(name, NULL, &hints, &res)) != 0) {
		cm_warn("DNS-RESOLVE-FAIL", "%s: %s", name, gai_strerror(rv));
		return CM_EUNAVAIL;
	}
	for (struct addrinfo *a = res; a != NULL && out->n < CM_RPC_MAX_REPLICAS; a = a->ai_next) {
		char        buf[CM_RPC_MAX_ADDR];
		const void *src =
		    a->ai_family == AF_INET
		        ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
		        : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		bool dup = false;

		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    inet_ntop(a->ai_family, src, buf, sizeof(buf)) == NULL)
			continue;
		for (size_t i = 0; i < out->n && !dup; i++)
			dup = strcmp(out->addr[i], buf) == 0;
		if (!dup)
			cm_strlcpy(out->addr[out->n++], buf, CM_RPC_MAX_ADDR);
	}
	freeaddrinfo(res);
	return CM_OK;
}

int
dns_period_ms(int opt_ms)
{
	const char *env = getenv("CM_RPC_RESOLVE_MS");
	int64_t     v;

	if (opt_ms > 0)
		return opt_ms;
	return env != NULL && cm_parse_i64(env, &v) && v > 0 && v < 86400000 ? (int)v
	                                                                     : CM_RPC_RESOLVE_MS;
}

void
dns_url(const char *addr, const char *port, char *url, size_t n)
{
	if (strchr(addr, ':') != NULL)
		snprintf(url, n, "tcp://[%s]:%s", addr, port);
	else
		snprintf(url, n, "tcp://%s:%s", addr, port);
}
