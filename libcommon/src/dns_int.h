/*
 * dns_int.h - private to libcommon: the dns+tcp://name:port entries that the RPC client
 * (rpc_resolve.c) and the event subscriber (pubsub.c) both take, and the lookup behind them.
 */
#ifndef CM_DNS_INT_H
#define CM_DNS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/rpc.h"

#define DNS_SCHEME "dns+tcp://"
#define DNS_HOST_MAX 254 /* a DNS name, NUL included */

/* True when entry starts with DNS_SCHEME. */
bool dns_is_entry(const char *entry);
/* Splits "dns+tcp://name:port" into host and port (decimal, 1-65535); false when malformed. */
bool dns_parse(const char *entry, char host[DNS_HOST_MAX], char port[8]);
/* getaddrinfo (a cm_rpc_resolve_fn): numeric addresses, duplicates dropped. May block. */
cm_err dns_lookup(void *arg, const char *name, cm_rpc_addrs *out);
/* The re-resolution period: opt_ms when > 0, else env CM_RPC_RESOLVE_MS, else the default. */
int dns_period_ms(int opt_ms);
/* "tcp://addr:port", the address in brackets when it is IPv6. */
void dns_url(const char *addr, const char *port, char *url, size_t n);

#endif
