/*
 * fuzz_multipart.c - libFuzzer driver for edge/multipart (upload bodies arrive from anyone).
 *
 * Input: a Content-Type value, '\n', then the body. When the Content-Type yields no boundary the
 * body is parsed with the boundary "b", so bodies are explored either way. On success the result
 * is checked: every pointer inside the body, the name decodes to the field, and the data is
 * followed by, and does not contain, "\r\n--boundary".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_in(const uint8_t *body, size_t len, const void *p, size_t n)
{
	const uint8_t *q = p;

	if (p == NULL) {
		if (n != 0)
			abort();
		return;
	}
	if (q < body || q > body + len || n > (size_t)(body + len - q))
		abort();
}

static void
check_ok(const uint8_t *body, size_t len, const char *bd, const char *field, const cm_mp_part *p)
{
	char   delim[4 + CM_MP_MAX_BOUNDARY + 1] = "\r\n--";
	size_t dl = 4 + strlen(bd);
	char  *dec;

	memcpy(delim + 4, bd, strlen(bd) + 1);
	check_in(body, len, p->name, p->name_len);
	check_in(body, len, p->filename, p->filename_len);
	check_in(body, len, p->content_type, p->content_type_len);
	check_in(body, len, p->data, p->len);
	if (p->name == NULL || p->data == NULL)
		abort();
	if ((dec = malloc(p->name_len + 1)) == NULL)
		return;
	if (!cm_mp_unescape(p->name, p->name_len, dec, p->name_len + 1) || strcmp(dec, field) != 0)
		abort();
	free(dec);
	if ((size_t)(body + len - (p->data + p->len)) < dl ||
	    memcmp(p->data + p->len, delim, dl) != 0)
		abort();
	for (size_t i = 0; i < p->len; i++) /* naive on purpose: an independent reference */
		if (memcmp(p->data + i, delim, dl) == 0)
			abort();
	if (p->filename != NULL && (dec = malloc(p->filename_len + 1)) != NULL) {
		if (!cm_mp_unescape(p->filename, p->filename_len, dec, p->filename_len + 1))
			abort();
		free(dec);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = {"file", "", "f"};
	const uint8_t           *nl;
	char                     bd[CM_MP_MAX_BOUNDARY + 1], why[128], *ct;
	size_t                   ctlen, len;
	uint8_t                 *body;
	cm_mp_part               p, p2;

	if (size > 1 << 18)
		return 0;
	nl = memchr(data, '\n', size);
	ctlen = nl != NULL ? (size_t)(nl - data) : 0;
	if ((ct = malloc(ctlen + 1)) == NULL)
		return 0;
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	if (!cm_multipart_boundary(ct, bd, sizeof(bd))) {
		if (bd[0] != '\0')
			abort();
		memcpy(bd, "b", 2);
	}
	free(ct);
	len = nl != NULL ? size - ctlen - 1 : size;
	/* an exact-size copy, so that any read past len is caught */
	if ((body = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(body, nl != NULL ? nl + 1 : data, len);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		cm_err err = cm_multipart_find(body, len, bd, fields[i], &p, why, sizeof(why));
		cm_err again = cm_multipart_find(body, len, bd, fields[i], &p2, NULL, 0);

		if (err != again || memcmp(&p, &p2, sizeof(p)) != 0)
			abort();
		if (err == CM_OK)
			check_ok(body, len, bd, fields[i], &p);
		else if ((err != CM_EINVAL && err != CM_ENOTFOUND && err != CM_EEXIST) ||
		         p.data != NULL || why[0] == '\0')
			abort();
	}
	free(body);
	return 0;
}
