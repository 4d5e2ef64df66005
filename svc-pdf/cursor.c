/*
 * cursor.c - encoding and strictly decoding list cursors.
 *
 * DESIGN: the payload is short text with a version tag; base64url (cm_b64url) hides it without
 * pretending to protect it: a client that forges a cursor only pages through its own documents.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cm/util.h"
#include "cursor.h"

static bool
ts_valid(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-dd dd:dd:dd.dddddd";

	if (n != PDF_CURSOR_TS_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	}
	return true;
}

cm_err
pdf_cursor_encode(const char *ts, const char *id, char out[PDF_CURSOR_MAX])
{
	char raw[80];
	int  n;

	out[0] = '\0';
	if (ts == NULL || id == NULL || !ts_valid(ts, strlen(ts)) || !cm_uuid_valid(id))
		return CM_EINVAL;
	n = snprintf(raw, sizeof(raw), "v1|%s|%s", ts, id);
	if (n <= 0 || (size_t)n >= sizeof(raw) || cm_b64url_len((size_t)n) + 1 > PDF_CURSOR_MAX)
		return CM_EINVAL;
	cm_b64url(raw, (size_t)n, out);
	return CM_OK;
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

cm_err
pdf_cursor_decode(const char *cursor, char ts[PDF_CURSOR_TS_LEN + 1], char id[37])
{
	char     raw[96];
	size_t   n = 0, len;
	uint32_t acc = 0;
	int      bits = 0, v;
	cm_err   err = CM_EINVAL;

	ts[0] = id[0] = '\0';
	if (cursor == NULL || (len = strlen(cursor)) == 0 || len >= PDF_CURSOR_MAX || len % 4 == 1)
		goto out;
	for (size_t i = 0; i < len; i++) {
		if ((v = b64val(cursor[i])) < 0)
			goto out;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= sizeof(raw))
				goto out;
			raw[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	raw[n] = '\0';
	/* "v1|" + ts + "|" + uuid */
	if (n != 3 + PDF_CURSOR_TS_LEN + 1 + 36 || memcmp(raw, "v1|", 3) != 0 ||
	    raw[3 + PDF_CURSOR_TS_LEN] != '|' || !ts_valid(raw + 3, PDF_CURSOR_TS_LEN))
		goto out;
	if (!cm_uuid_valid(raw + 4 + PDF_CURSOR_TS_LEN))
		goto out;
	memcpy(ts, raw + 3, PDF_CURSOR_TS_LEN);
	ts[PDF_CURSOR_TS_LEN] = '\0';
	memcpy(id, raw + 4 + PDF_CURSOR_TS_LEN, 37);
	err = CM_OK;
out:
	return err;
}
