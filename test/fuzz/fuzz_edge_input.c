/*
 * fuzz_edge_input.c - libFuzzer driver for what the edge parses from the outside: JSON bodies
 * into the request messages the edge translates, Cookie headers, request paths against the route
 * table, query strings, and trusted-proxy ranges with the X-Forwarded-For walk (the client address
 * every limit is keyed by). The first byte picks the target.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clientaddr.h"
#include "edge.h"
#include "pbjson.h"
#include "proto/auth.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const descs[] = {
    &auth__register_request__descriptor,  &auth__login_request__descriptor,
    &auth__refresh_request__descriptor,   &auth__logout_request__descriptor,
    &auth__register_response__descriptor, &qgen__create_request__descriptor,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 1 << 16)
		return 0;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0: {
		json_error_t      jerr;
		json_t           *v = json_loadb(s, size - 1, JSON_REJECT_DUPLICATES, &jerr);
		cm_arena          a;
		ProtobufCMessage *m;
		char              why[200];
		if (v != NULL) {
			for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
				cm_arena_init(&a);
				if (edge_json_to_pb(descs[i], v, &a, &m, why, sizeof(why)) ==
				    CM_OK) {
					json_t *back = edge_pb_to_json(m);
					json_decref(back);
				}
				cm_arena_fini(&a);
			}
			json_decref(v);
		}
		break;
	}
	case 1: {
		char *acc = NULL, *ref = NULL;
		(void)edge_cookie_parse(s, &acc, &ref);
		free(acc);
		free(ref);
		break;
	}
	case 3: {
		/* The returned length is the whole value's; the copy is cut and terminated. */
		char    small[8], big[1024];
		ssize_t n = edge_query_get(s, "access_token", small, sizeof(small));
		ssize_t m = edge_query_get(s, "access_token", big, sizeof(big));
		size_t  kept = n >= 0 && (size_t)n < sizeof(small) ? (size_t)n : sizeof(small) - 1;
		if (n != m || (n >= 0 && strlen(small) != kept))
			abort();
		break;
	}
	case 4: {
		/* "CIDRS\nXFF": the address found is the peer's or one of the hops, never made up.
		 */
		char      *nl = strchr(s, '\n');
		edge_cidrs t;
		char       out[EDGE_ADDR_LEN];
		if (nl == NULL)
			break;
		*nl = '\0';
		if (edge_cidrs_parse(s, &t) != CM_OK)
			t.n = 0;
		(void)edge_cidrs_contain(&t, nl + 1);
		edge_client_addr(&t, "127.0.0.1", nl + 1, out, sizeof(out));
		if (strcmp(out, "127.0.0.1") != 0 && strstr(nl + 1, out) == NULL)
			abort();
		break;
	}
	default: {
		bool matched;
		char allow[64];
		(void)edge_route_match("GET", s, NULL, &matched, allow, sizeof(allow));
		(void)edge_route_match("POST", s, NULL, &matched, allow, sizeof(allow));
		break;
	}
	}
	free(s);
	return 0;
}
