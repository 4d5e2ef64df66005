/*
 * clientaddr.h - who is calling: the socket's peer, or what trusted proxies say it is.
 *
 * X-Forwarded-For is believed only when the peer is a configured trusted proxy
 * (EDGE_TRUSTED_PROXIES, CIDRs). Each proxy appends the address it saw, so the list is read from
 * the right: the first address that is not itself a trusted proxy is the client. Anything to its
 * left was written by the client and proves nothing. Pure functions: unit-tested and fuzzed.
 */
#ifndef EDGE_CLIENTADDR_H
#define EDGE_CLIENTADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

struct sockaddr;

#define EDGE_MAX_TRUSTED 32
#define EDGE_ADDR_LEN 64 /* room for any textual IPv6 address */

typedef struct edge_cidr {
	int     family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int     bits;
} edge_cidr;

typedef struct edge_cidrs {
	edge_cidr v[EDGE_MAX_TRUSTED];
	int       n;
} edge_cidrs;

/* Parses "10.0.0.0/8, 127.0.0.1, ::1/128" (an address without /bits is one host; "" is none).
 * CM_EINVAL on anything else, with out->n undefined. */
CM_MUSTCHECK cm_err edge_cidrs_parse(const char *s, edge_cidrs *out);
/* True when the textual address lies in one of the ranges (IPv4-mapped IPv6 counts as IPv4). */
bool edge_cidrs_contain(const edge_cidrs *c, const char *addr);
/* A socket address's text ("" for another family or a NULL sa), IPv4 without printf. */
void edge_peer_text(const struct sockaddr *sa, char out[EDGE_ADDR_LEN]);
/* The client address for a request from peer carrying xff (NULL when absent) into out. */
void edge_client_addr(const edge_cidrs *trusted, const char *peer, const char *xff, char *out,
                      size_t outlen);

#endif
