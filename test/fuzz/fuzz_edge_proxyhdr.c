/*
 * fuzz_edge_proxyhdr.c - libFuzzer driver for what the frontend proxy reads from the app's server
 * and the browser (edge/proxyhdr.c): Location values, Host headers, Connection lists. Checks that
 * a rewritten Location always starts with the public origin and keeps the value's path part.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char pub[] = "https://app.example.com";
	char             *s, out[512], origin[EDGE_ORIGIN_MAX];

	if (size > 4096 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (edge_proxy_rewrite_location(s, "http://127.0.0.1:28090", pub, out, sizeof(out)) &&
	    (strncmp(out, pub, strlen(pub)) != 0 ||
	     (out[strlen(pub)] != '\0' && strchr("/?#", out[strlen(pub)]) == NULL)))
		abort();
	if (edge_proxy_origin(s, origin, sizeof(origin)) && strncmp(origin, "http", 4) != 0)
		abort();
	(void)edge_proxy_public_origin(edge_proxy_scheme(s, true), s, out, sizeof(out));
	(void)edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "X-Hop", s);
	(void)edge_proxy_header_passes(EDGE_PROXY_REQUEST, s, "keep-alive, x-hop");
	free(s);
	return 0;
}
