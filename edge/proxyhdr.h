/*
 * proxyhdr.h - what the frontend proxy passes between the browser and the web app's server:
 * which headers cross (RFC 9110 7.6.1: hop-by-hop ones stay on their connection) and how a
 * redirect the app aims at itself is turned to the origin the browser used.
 *
 * A Next.js server believes it runs at http://localhost:PORT (or at EDGE_FRONTEND_URL) and says so
 * in Location; followed as is, the browser leaves the edge's origin and the session cookie and
 * CORS stop working. Such a Location (or Content-Location) is rewritten onto the public origin;
 * relative references and other sites pass unchanged. Pure functions: unit-tested and fuzzed.
 */
#ifndef EDGE_PROXYHDR_H
#define EDGE_PROXYHDR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum edge_proxy_dir {
	EDGE_PROXY_REQUEST,  /* browser -> app */
	EDGE_PROXY_RESPONSE, /* app -> browser */
} edge_proxy_dir;

/* Longest origin kept ("https://" + a Host header the edge accepts + ":65535"). */
#define EDGE_ORIGIN_MAX 300

/* True when a header named name crosses the proxy in direction dir. connection is the message's
 * Connection header (several joined with ","; NULL when none): the names it lists stay behind,
 * as do Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding and Upgrade. The proxy
 * frames bodies itself, so Content-Length never crosses; the request's Host, Expect and
 * forwarding headers (X-Forwarded-*, Forwarded, X-Request-Id, and X-User-Id: the old backend
 * believes it, so a client's own never crosses) are the proxy's own to set, and in a response
 * Content-Type and X-Request-Id are the edge's. */
bool edge_proxy_header_passes(edge_proxy_dir dir, const char *name, const char *connection);

/* "scheme://host:port" of an absolute http(s) URL, lower-cased, with the default port made
 * explicit; false for anything else (userinfo, no host, a bad port). */
bool edge_proxy_origin(const char *url, char *out, size_t outlen);

/* When value (a Location or Content-Location) is an absolute URL on upstream_origin (as made by
 * edge_proxy_origin) or on a loopback origin (http://localhost, 127.0.0.1 or [::1], any port),
 * writes public_origin followed by the value's path, query and fragment into out and returns
 * true. False leaves the value as it is: relative references, other origins, or no room. */
bool edge_proxy_rewrite_location(const char *value, const char *upstream_origin,
                                 const char *public_origin, char *out, size_t outlen);

/* The scheme the browser used: "https" only when the peer is a trusted proxy (trusted) whose
 * X-Forwarded-Proto (forwarded_proto, NULL when absent) starts with it; otherwise "http". */
const char *edge_proxy_scheme(const char *forwarded_proto, bool trusted);

/* "scheme://host" for the Host header the client sent. False when host is absent or not a plain
 * host[:port] (then nothing is rewritten: a Host is echoed into Location only when it is clean). */
bool edge_proxy_public_origin(const char *scheme, const char *host, char *out, size_t outlen);

#endif
