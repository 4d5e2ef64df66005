/*
 * filename.c - sanitising the user-given name of an upload.
 *
 * DESIGN: one pass over the basename, character by character (UTF-8 decoded), keeping what is
 * printable; then trimming and the length cap. The cap keeps the extension: a 300-byte
 * "....pdf" name becomes a 251-byte stem plus ".pdf", so the legacy frontend's check for a PDF
 * name still holds.
 */
#include <string.h>
#include <strings.h>

#include "config.h"
#include "filename.h"
#include "text.h"

static bool
dropped(int32_t c)
{
	return c < 0x20 || (c >= 0x7f && c < 0xa0) || (c >= 0x202a && c <= 0x202e) ||
	       (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f || c == 0xfeff;
}

size_t
pdf_filename_sanitize(const char *in, char *out, size_t outlen)
{
	char                 tmp[4 * PDF_MAX_FILENAME + 8];
	const char          *base = in != NULL ? in : "";
	const unsigned char *p;
	size_t               n, i = 0, k, o = 0, s = 0, ext = 0;
	int32_t              cp = 0;

	for (const char *q = base; *q != '\0'; q++) {
		if (*q == '/' || *q == '\\')
			base = q + 1;
	}
	p = (const unsigned char *)base;
	n = strlen(base);
	if (n >= 4 && strncasecmp(base + n - 4, ".pdf", 4) == 0)
		ext = 4; /* the original's extension, kept when the name is cut */
	while (i < n && o + 4 < sizeof(tmp)) {
		if ((k = pdf_utf8_decode(p + i, n - i, &cp)) == 0) {
			i++;
			continue;
		}
		i += k;
		if (!dropped(cp))
			o += pdf_utf8_encode(cp, tmp + o);
	}
	while (o > 0 && tmp[o - 1] == ' ')
		o--;
	while (s < o && tmp[s] == ' ')
		s++;
	n = o - s;
	if ((n == 1 && tmp[s] == '.') || (n == 2 && tmp[s] == '.' && tmp[s + 1] == '.'))
		n = 0;
	if (n > PDF_MAX_FILENAME) {
		k = pdf_utf8_floor(tmp + s, PDF_MAX_FILENAME - ext);
		memcpy(tmp + s + k, (const char *)p + strlen(base) - ext, ext);
		n = k + ext;
	}
	if (outlen == 0)
		return 0;
	if (n == 0) {
		memcpy(tmp, "document.pdf", 12);
		s = 0;
		n = 12;
	}
	if (n >= outlen)
		n = pdf_utf8_floor(tmp + s, outlen - 1);
	memcpy(out, tmp + s, n);
	out[n] = '\0';
	return n;
}
