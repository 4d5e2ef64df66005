/*
 * chunks.c - a job's text from svc-pdf (chunks.h).
 *
 * DESIGN. Two idempotent calls, each with its own QGEN_PDF_TIMEOUT_MS deadline: pdf.Chunks
 * (the owner's document, so a document deleted or given to nobody else is NOT_FOUND), then,
 * with a topic, pdf.Search over the whole document, whose hits are mapped by chunk index onto
 * the chunks of the page range. The response is kept, not copied: chunks point into it.
 * pdf.Chunks sends the first characters of each later page of a chunk (Chunk.page_heads);
 * svc-pdf joins pages with a blank line, so a page starts after the first blank line from the
 * previous page's start that its head follows. A head not found (an empty page) starts where
 * the previous page did; a chunk without heads (an older svc-pdf) is all its first page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "chunks.h"

static cm_rpc_call_opts
pdf_opts(const Qgen__JobParams *jp, const char *method)
{
	cm_rpc_call_opts o = {0};

	o.method = method;
	o.subject = jp->owner; /* svc-pdf checks ownership as the set's owner */
	o.deadline_ms = cm_now_ms() + QGEN_PDF_TIMEOUT_MS;
	o.idempotent = true;
	return o;
}

/* Topic matches among doc's chunks, best first. */
static void
rank_topic(qgen_service *s, const Qgen__JobParams *jp, qgen_doc *doc)
{
	const Pdf__ChunksResponse *all = doc->resp;
	Pdf__SearchRequest         sq = PDF__SEARCH_REQUEST__INIT;
	cm_rpc_call_opts           o = pdf_opts(jp, "pdf.Search");
	cm_rpc_result              res;
	ProtobufCMessage          *resp = NULL;
	Pdf__ChunksResponse       *sr;

	if (jp->topic[0] == '\0')
		return;
	sq.id = jp->document_id;
	sq.query = jp->topic;
	sq.limit = QGEN_MAX_SEARCH;
	if (cm_rpc_call(s->pdf, &o, &sq.base, &pdf__chunks_response__descriptor, &resp, &res) ==
	    CM_OK) {
		sr = (Pdf__ChunksResponse *)resp;
		if (sr->n_chunks > 0 && (doc->matches = calloc(sr->n_chunks, sizeof(int))) != NULL)
			for (size_t i = 0; i < sr->n_chunks; i++)
				for (size_t k = 0; k < doc->nchunks; k++)
					if (all->chunks[k]->index == sr->chunks[i]->index) {
						doc->matches[doc->nmatches++] = (int)k;
						break;
					}
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	cm_rpc_result_fini(&res);
}

/* Where each of c's later pages starts in its text (c->n_page_heads == span). */
static void
find_pages(const Pdf__Chunk *c, size_t len, size_t *at)
{
	size_t from = 0;

	for (size_t i = 0; i < c->n_page_heads; i++) {
		const char *head = c->page_heads[i];
		size_t      n = strlen(head);
		for (size_t pos = from + 2; n > 0 && pos < len; pos++)
			if (c->text[pos - 1] == '\n' && c->text[pos - 2] == '\n' &&
			    memcmp(c->text + pos, head, n < len - pos ? n : len - pos) == 0) {
				from = pos;
				break;
			}
		at[i] = from;
	}
}

/* The chunks' page_at, when svc-pdf sent the heads of every later page. */
static cm_err
add_pages(qgen_doc *doc)
{
	const Pdf__ChunksResponse *all = doc->resp;
	size_t                     total = 0, used = 0;

	for (size_t i = 0; i < doc->nchunks; i++)
		total += all->chunks[i]->n_page_heads;
	if (total == 0)
		return CM_OK;
	if ((doc->page_at = calloc(total, sizeof(size_t))) == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < doc->nchunks; i++) {
		const Pdf__Chunk *c = all->chunks[i];
		if (c->page_last <= c->page_first ||
		    c->n_page_heads != (size_t)(c->page_last - c->page_first))
			continue;
		find_pages(c, doc->chunks[i].len, doc->page_at + used);
		doc->chunks[i].page_at = doc->page_at + used;
		used += c->n_page_heads;
	}
	return CM_OK;
}

cm_err
qgen_doc_fetch(qgen_service *s, const Qgen__JobParams *jp, qgen_doc *doc, char *why, size_t whylen)
{
	Pdf__ChunksRequest   rq = PDF__CHUNKS_REQUEST__INIT;
	cm_rpc_call_opts     o = pdf_opts(jp, "pdf.Chunks");
	cm_rpc_result        res;
	ProtobufCMessage    *resp = NULL;
	Pdf__ChunksResponse *all;
	cm_err               err;

	memset(doc, 0, sizeof(*doc));
	rq.id = jp->document_id;
	rq.first_page = jp->first_page;
	rq.last_page = jp->last_page;
	rq.page_heads = true;
	err = cm_rpc_call(s->pdf, &o, &rq.base, &pdf__chunks_response__descriptor, &resp, &res);
	if (err != CM_OK)
		snprintf(why, whylen, "%s",
		         err == CM_ENOTFOUND ? "the document no longer exists" : res.message);
	cm_rpc_result_fini(&res);
	if (err != CM_OK)
		return err;
	doc->resp = all = (Pdf__ChunksResponse *)resp;
	if (all->n_chunks == 0) {
		snprintf(why, whylen, "the document has no text in the pages asked for");
		return CM_EPRECOND;
	}
	doc->nchunks = all->n_chunks < QGEN_MAX_CHUNKS ? all->n_chunks : QGEN_MAX_CHUNKS;
	if ((doc->chunks = calloc(doc->nchunks, sizeof(qgen_chunk))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return CM_ENOMEM;
	}
	for (size_t i = 0; i < doc->nchunks; i++) {
		const Pdf__Chunk *c = all->chunks[i];
		doc->chunks[i] =
		    (qgen_chunk){c->text, strlen(c->text), c->page_first, c->page_last, NULL};
	}
	if (add_pages(doc) != CM_OK) {
		snprintf(why, whylen, "out of memory");
		return CM_ENOMEM;
	}
	rank_topic(s, jp, doc);
	return CM_OK;
}

void
qgen_doc_fini(qgen_doc *doc)
{
	free(doc->matches);
	free(doc->page_at);
	free(doc->chunks);
	if (doc->resp != NULL)
		pdf__chunks_response__free_unpacked(doc->resp, NULL);
	memset(doc, 0, sizeof(*doc));
}
