/*
 * body.h - an upload's HTTP request body, as the edge forwards it (pdf.UploadPart pieces into a
 * spool, then pdf.UploadBody; pdf.UploadAbort for a body the client abandoned): the PDF picked
 * out of it, the multipart field `file` or the raw body, with a verdict for a body that holds
 * none. The edge words the HTTP answer from the verdict (legacy or v1 shape and status), so the
 * rules of what an acceptable upload is live here once, for both routes.
 */
#ifndef PDF_BODY_H
#define PDF_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/rpc.h"

/* Bytes a body may have beyond PDF_MAX_UPLOAD: the multipart framing around the file. */
#define PDF_BODY_SLACK (64 * 1024)

/* The file of an accepted body; pointers into the body. filename is raw (multipart escapes in
 * place; svc-pdf sanitises it later), NULL for a raw body. */
typedef struct pdf_body_file {
	const char    *filename;
	size_t         filename_len;
	const uint8_t *data;
	size_t         len;
} pdf_body_file;

/* The verdict (Pdf__UploadBodyResponse__Verdict) for body/len sent with content_type; ACCEPTED
 * fills *out, anything else leaves a short reason in detail (never quoting the body). A file of
 * zero bytes is ACCEPTED: the upload pipeline answers it ("empty file"). */
int pdf_body_pick(const uint8_t *body, size_t len, const char *content_type, bool require_pdf_name,
                  pdf_body_file *out, char *detail, size_t detaillen);

#endif
