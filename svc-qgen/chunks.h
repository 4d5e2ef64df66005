/*
 * chunks.h - the text a generation job reads: the document's chunks in the set's page range,
 * fetched from svc-pdf as the set's owner with where their later pages start (so a question
 * cites the page of its sentence), and the chunks that match the set's topic.
 */
#ifndef QGEN_CHUNKS_H
#define QGEN_CHUNKS_H

#include <stddef.h>

#include "proto/qgen.pb-c.h"
#include "server.h"
#include "types.h"

typedef struct qgen_doc {
	qgen_chunk *chunks; /* at most QGEN_MAX_CHUNKS; text points into the response */
	size_t      nchunks;
	int        *matches; /* chunks matching the topic, best first; NULL when no topic or no
	                        ranking (not a failure: the prompt still names the topic) */
	size_t  nmatches;
	size_t *page_at; /* the chunks' page_at, one array for all (NULL from an older svc-pdf) */
	void   *resp;    /* svc-pdf's response, which owns the text */
} qgen_doc;

/*
 * Fetches the chunks of jp's document and page range, then ranks them for jp's topic. On
 * failure why says what to tell the user: CM_ENOTFOUND (the document is gone) and CM_EPRECOND
 * (no text in those pages) are final; CM_EUNAVAIL and the like mean svc-pdf could not answer
 * now. doc is filled on CM_OK; release it with qgen_doc_fini either way.
 */
CM_MUSTCHECK cm_err qgen_doc_fetch(qgen_service *s, const Qgen__JobParams *jp, qgen_doc *doc,
                                   char *why, size_t whylen);
void                qgen_doc_fini(qgen_doc *doc);

#endif
