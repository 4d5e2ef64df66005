/*
 * query.h - the edge's one query-string parser (query.c), for HTTP routes (edge_query_param in
 * server.c) and the WebSocket upgrade (ws.c's ?access_token=).
 */
#ifndef EDGE_QUERY_H
#define EDGE_QUERY_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Finds parameter `name` in query, the text after '?' ("a=1&b=x%20y"; it ends at NUL or '#'),
 * and decodes its value into buf: "%XX" becomes that byte ("%00" and malformed escapes stay as
 * written), '+' becomes a space. The first occurrence wins; a parameter without '=' does not count.
 * buf is always terminated; a value longer than buflen - 1 bytes is cut there.
 * Returns the length of the whole decoded value (>= buflen means it was cut), or -1 when the
 * parameter is absent (buf is then "" when buflen > 0). Pure: no allocation, reentrant.
 */
ssize_t edge_query_get(const char *query, const char *name, char *buf, size_t buflen);

#endif
