/*
 * multipart.h - a strict parser for multipart/form-data request bodies (RFC 7578, RFC 2046) that
 * are fully in memory. svc-pdf uses it on an upload body (sent whole or spooled in pieces by the
 * edge, legacy POST /api/pdf/upload and v1 POST /documents) to pick out the field `file`; the
 * edge uses cm_multipart_boundary on the request's Content-Type before the body comes. One
 * parser (strict, fuzzed) for both routes rather than libmicrohttpd's post processor.
 *
 * Nothing is copied or allocated: results point into the caller's body and stay valid as long as
 * it does. Functions are reentrant and keep no state. The parser never reads outside [body,
 * body + len), uses no recursion and scans the body once in linear time (bodies reach 50 MiB).
 *
 * Strictness (each is CM_EINVAL with a reason, see cm_multipart_find):
 *   - lines end in CRLF. A bare CR or LF ending a boundary line or a part header line is
 *     rejected, never accepted as a line end, so a part's headers cannot be read differently by
 *     a lenient and a strict reader. In the preamble and in part data CR and LF are plain bytes;
 *   - a line that starts with "--boundary" is a delimiter (RFC 2046 5.1.1: the boundary need not
 *     be the whole line). It must be followed by "--" (the close delimiter), or by optional
 *     spaces/tabs and CRLF; anything else is rejected rather than taken as data;
 *   - every part needs one Content-Disposition "form-data" with one name parameter; a repeated
 *     Content-Disposition or Content-Type header, or a repeated name/filename parameter, is
 *     rejected as ambiguous. Folded header lines and control characters in headers are rejected;
 *   - filename* (RFC 5987) is ignored: RFC 7578 4.2 forbids senders to use it;
 *   - anything after the close delimiter "--boundary--" is epilogue and ignored.
 */
#ifndef CM_MULTIPART_H
#define CM_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

/* Limits of the parser (candidates for cm/limits.h). */
#define CM_MP_MAX_BOUNDARY 70 /* RFC 2046: 1..70 characters */
#define CM_MP_MAX_PARTS 16    /* parts per body */
#define CM_MP_MAX_HEADERS 16  /* header lines per part */
#define CM_MP_MAX_LINE 1024   /* bytes per part header line, CRLF not counted */

/*
 * Extracts the boundary from a Content-Type header value: the media type "multipart/form-data"
 * (case-insensitive) and a `boundary` parameter (name case-insensitive), as a quoted string with
 * backslash escapes or unquoted (token characters plus ()/:=?, which some clients leave bare),
 * decoded to 1..70 characters of RFC 2046's bchars (letters,
 * digits, space and '()+_,-./:=? , not ending in a space). Other parameters are parsed and
 * ignored. False when the value is malformed, has no boundary, has two boundary parameters
 * (ambiguous), or when out (NUL-terminated on success) cannot hold it: outlen >= 71 always does.
 */
bool cm_multipart_boundary(const char *content_type, char *out, size_t outlen);

/*
 * One part. Pointers point into the body (not NUL-terminated); NULL/0 when absent.
 * name and filename are the raw parameter value: the token, or the bytes between the quotes
 * with backslash escapes left in place (`a\"b` for the filename a"b). Use cm_mp_unescape()
 * for the decoded text. Browsers percent-encode '"' and CR/LF instead (WHATWG); that is left
 * as is. The filename is returned raw, path separators included: the caller sanitises it.
 * content_type is the part's Content-Type value without surrounding whitespace.
 * data/len is the part's content: everything after the blank line ending the headers up to,
 * not including, the CRLF before the next delimiter. len may be 0.
 */
typedef struct cm_mp_part {
	const char    *name;
	size_t         name_len;
	const char    *filename;
	size_t         filename_len;
	const char    *content_type;
	size_t         content_type_len;
	const uint8_t *data;
	size_t         len;
} cm_mp_part;

/*
 * Finds the part whose form name equals `field` (exact bytes, after decoding escapes) in
 * body/len, delimited by `boundary` (as returned by cm_multipart_boundary). The whole body is
 * checked before answering, so a malformed body is CM_EINVAL wherever the fault lies.
 * The preamble before the first boundary and the epilogue after the closing one are ignored.
 * Returns:
 *   CM_OK        *out is filled;
 *   CM_EINVAL    bad arguments or a malformed body: no first boundary, no closing
 *                "--boundary--", a header block without its blank line, a header line over
 *                CM_MP_MAX_LINE bytes, more than CM_MP_MAX_PARTS parts or
 *                CM_MP_MAX_HEADERS headers in a part, a part without a form-data name...;
 *   CM_ENOTFOUND no part has that name;
 *   CM_EEXIST    more than one part has that name.
 * On any error *out is zeroed and why (when not NULL) holds a short reason for logs and 4xx
 * details; it never quotes the body.
 */
CM_MUSTCHECK cm_err cm_multipart_find(const uint8_t *body, size_t len, const char *boundary,
                                      const char *field, cm_mp_part *out, char *why, size_t whylen);

/*
 * Decodes the backslash escapes of a name or filename as returned in cm_mp_part into out,
 * NUL-terminated. False (out then holds "") when out is too small: outlen >= len + 1 always
 * suffices.
 */
bool cm_mp_unescape(const char *raw, size_t len, char *out, size_t outlen);

#endif
