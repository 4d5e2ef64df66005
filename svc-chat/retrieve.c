/*
 * retrieve.c - passages from svc-pdf (see retrieve.h).
 *
 * DESIGN: plain blocking RPCs on the worker's thread (it waits for the model next anyway). Page
 * texts fetched to cut multi-page chunks are kept for the question in a small table, so two
 * chunks sharing a page cost one pdf.GetPage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "retrieve.h"

#define PAGE_CACHE 32

typedef struct page_cache {
	int       n;
	int       page[PAGE_CACHE];
	Pdf__Page *msg[PAGE_CACHE];
} page_cache;

static cm_err
call(chat_service *s, const chat_caller *who, const char *method, const ProtobufCMessage *req,
     const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
	cm_rpc_call_opts o;
	cm_rpc_result    res;
	cm_err           err;

	memset(&o, 0, sizeof(o));
	o.method = method;
	o.subject = who->subject;
	o.request_id = who->request_id;
	o.deadline_ms = cm_now_ms() + CHAT_PDF_TIMEOUT_MS;
	o.idempotent = true;
	err = cm_rpc_call(s->pdf, &o, req, d, resp, &res);
	if (err != CM_OK && err != CM_ENOTFOUND)
		cm_warn("CHAT-PDF", "%s: %s (%s)", method, cm_strerror(err), res.message);
	cm_rpc_result_fini(&res);
	return err;
}

/* The text of page n (NULL when it cannot be had: the chunk then stays less finely cut). */
static const char *
page_text(chat_service *s, const chat_caller *who, const char *doc, int n, page_cache *pc)
{
	Pdf__GetPageRequest rq = PDF__GET_PAGE_REQUEST__INIT;
	ProtobufCMessage   *resp = NULL;

	for (int i = 0; i < pc->n; i++)
		if (pc->page[i] == n)
			return pc->msg[i]->text;
	if (pc->n == PAGE_CACHE)
		return NULL;
	rq.id = (char *)doc;
	rq.page = n;
	if (call(s, who, "pdf.GetPage", &rq.base, &pdf__page__descriptor, &resp) != CM_OK)
		return NULL;
	pc->page[pc->n] = n;
	pc->msg[pc->n] = (Pdf__Page *)resp;
	return pc->msg[pc->n++]->text;
}

/* Adds one chunk's pages to ps. */
static cm_err
add_chunk(chat_service *s, const chat_caller *who, const char *doc, const Pdf__Chunk *c,
          page_cache *pc, chat_passages *ps)
{
	const char *texts[CHAT_MAX_PASSAGES];
	size_t      cut[CHAT_MAX_PASSAGES], len = strlen(c->text), from = 0;
	int         span = c->page_last - c->page_first;
	cm_err      err = CM_OK;

	if (span <= 0 || span >= CHAT_MAX_PASSAGES) /* one page, or too many to cut: as it is */
		return chat_passages_add(ps, c->page_first, c->text, len);
	for (int i = 0; i < span; i++)
		texts[i] = page_text(s, who, doc, c->page_first + 1 + i, pc);
	chat_split_chunk(c->text, len, c->page_first, c->page_last, texts, cut);
	for (int i = 0; i <= span && err == CM_OK; i++) {
		size_t to = i < span ? cut[i] : len;
		err = chat_passages_add(ps, c->page_first + i, c->text + from, to - from);
		from = to;
	}
	return err;
}

cm_err
chat_retrieve(chat_service *s, const chat_caller *who, const char *document_id,
              const char *question, chat_passages *ps, char *why, size_t whylen)
{
	Pdf__SearchRequest   sq = PDF__SEARCH_REQUEST__INIT;
	Pdf__ChunksRequest   cq = PDF__CHUNKS_REQUEST__INIT;
	ProtobufCMessage    *resp = NULL;
	Pdf__ChunksResponse *chunks;
	page_cache           pc;
	char                 query[CHAT_MAX_QUERY + 1];
	size_t               qlen = strlen(question);
	cm_err               err;

	memset(&pc, 0, sizeof(pc));
	if (qlen > CHAT_MAX_QUERY)
		qlen = chat_utf8_floor(question, CHAT_MAX_QUERY);
	memcpy(query, question, qlen);
	query[qlen] = '\0';
	sq.id = (char *)document_id;
	sq.query = query;
	sq.limit = (int32_t)s->cfg.search_limit;
	err = call(s, who, "pdf.Search", &sq.base, &pdf__chunks_response__descriptor, &resp);
	if (err == CM_OK && ((Pdf__ChunksResponse *)resp)->n_chunks == 0) {
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		cq.id = (char *)document_id;
		cq.first_page = 1;
		cq.last_page = CHAT_FALLBACK_PAGES;
		err = call(s, who, "pdf.Chunks", &cq.base, &pdf__chunks_response__descriptor, &resp);
		ps->from_start = true;
	}
	if (err != CM_OK) {
		snprintf(why, whylen, "%s",
		         err == CM_ENOTFOUND ? "the document no longer exists"
		                             : "the document's text could not be read just now");
		if (err != CM_ENOTFOUND && err != CM_ENOMEM)
			err = err == CM_ETIMEDOUT ? CM_ETIMEDOUT : CM_EUNAVAIL;
		goto out;
	}
	chunks = (Pdf__ChunksResponse *)resp;
	for (size_t i = 0; i < chunks->n_chunks && !chat_passages_full(ps) && err == CM_OK; i++)
		err = add_chunk(s, who, document_id, chunks->chunks[i], &pc, ps);
	if (err != CM_OK)
		snprintf(why, whylen, "out of memory");
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	for (int i = 0; i < pc.n; i++)
		protobuf_c_message_free_unpacked(&pc.msg[i]->base, NULL);
	return err;
}
