/*
 * retrieve.c - passages from svc-pdf (see retrieve.h).
 *
 * DESIGN: pdf.Search is sent asynchronously (cm_rpc_call_async) and its answer handed to the
 * worker through a mutex and condition variable, so the turn's own database work overlaps it;
 * everything after is plain blocking RPCs on the worker's thread. One pdf.Search brings the
 * chunks with the starts of their later pages; only from an older svc-pdf are pages fetched,
 * kept for the question in a small table so two chunks sharing a page cost one pdf.GetPage.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "retrieve.h"

#define PAGE_CACHE 32

typedef struct page_cache {
	int        n;
	int        page[PAGE_CACHE];
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
	for (int i = 0; i < span; i++) /* svc-pdf sends the pages' starts; older ones do not */
		texts[i] = c->n_page_heads == (size_t)span
		               ? c->page_heads[i]
		               : page_text(s, who, doc, c->page_first + 1 + i, pc);
	chat_split_chunk(c->text, len, c->page_first, c->page_last, texts, cut);
	for (int i = 0; i <= span && err == CM_OK; i++) {
		size_t to = i < span ? cut[i] : len;
		err = chat_passages_add(ps, c->page_first + i, c->text + from, to - from);
		from = to;
	}
	return err;
}

struct chat_search {
	chat_service      *s;
	const chat_caller *who;
	char               doc[CM_UUID_LEN + 1];
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	bool               done;
	cm_err             err;
	uint8_t           *payload; /* the packed ChunksResponse */
	size_t             len;
};

/* On an nng thread: keep the answer, wake the worker. Never blocks for long. */
static void
search_done(void *arg, cm_rpc_result *res)
{
	chat_search *q = arg;
	cm_err       err = cm_err_from_status(res->status);

	pthread_mutex_lock(&q->mu);
	if (err == CM_OK &&
	    (q->payload = malloc(res->payload_len > 0 ? res->payload_len : 1)) == NULL)
		err = CM_ENOMEM;
	if (err == CM_OK) {
		memcpy(q->payload, res->payload, res->payload_len);
		q->len = res->payload_len;
	} else if (err != CM_ENOTFOUND) {
		cm_warn("CHAT-PDF", "pdf.Search: %s (%s)", cm_strerror(err), res->message);
	}
	q->err = err;
	q->done = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

cm_err
chat_search_start(chat_service *s, const chat_caller *who, const char *document_id,
                  const char *question, chat_search **out)
{
	Pdf__SearchRequest sq = PDF__SEARCH_REQUEST__INIT;
	cm_rpc_call_opts   o;
	chat_search       *q;
	char               query[CHAT_MAX_QUERY + 1];
	uint8_t            small[2048], *buf = small;
	size_t             qlen = strlen(question), n;
	cm_err             err;

	*out = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return CM_ENOMEM;
	q->s = s;
	q->who = who;
	cm_strlcpy(q->doc, document_id, sizeof(q->doc));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (qlen > CHAT_MAX_QUERY)
		qlen = chat_utf8_floor(question, CHAT_MAX_QUERY);
	memcpy(query, question, qlen);
	query[qlen] = '\0';
	sq.id = q->doc;
	sq.query = query;
	sq.limit = (int32_t)s->cfg.search_limit;
	sq.page_heads = true;
	sq.fallback = true;
	n = pdf__search_request__get_packed_size(&sq);
	if (n > sizeof(small) && (buf = malloc(n)) == NULL) {
		q->err = CM_ENOMEM;
		q->done = true;
		*out = q;
		return CM_OK;
	}
	pdf__search_request__pack(&sq, buf);
	memset(&o, 0, sizeof(o));
	o.method = "pdf.Search";
	o.subject = who->subject;
	o.request_id = who->request_id;
	o.deadline_ms = cm_now_ms() + CHAT_PDF_TIMEOUT_MS;
	o.idempotent = true;
	if ((err = cm_rpc_call_async(s->pdf, &o, buf, n, search_done, q)) != CM_OK) {
		q->err = err; /* not started: no callback will come */
		q->done = true;
	}
	if (buf != small)
		free(buf);
	*out = q;
	return CM_OK;
}

static void
search_wait(chat_search *q)
{
	pthread_mutex_lock(&q->mu);
	while (!q->done)
		pthread_cond_wait(&q->cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

static void
search_free(chat_search *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->payload);
	free(q);
}

void
chat_search_abandon(chat_search *q)
{
	if (q == NULL)
		return;
	search_wait(q);
	search_free(q);
}

cm_err
chat_retrieve_finish(chat_search *q, chat_passages *ps, char *why, size_t whylen)
{
	Pdf__ChunksRequest   cq = PDF__CHUNKS_REQUEST__INIT;
	ProtobufCMessage    *resp = NULL;
	Pdf__ChunksResponse *chunks;
	page_cache           pc;
	cm_err               err;

	memset(&pc, 0, sizeof(pc));
	search_wait(q);
	if ((err = q->err) == CM_OK &&
	    (resp = protobuf_c_message_unpack(&pdf__chunks_response__descriptor, NULL, q->len,
	                                      q->payload)) == NULL)
		err = CM_EUNAVAIL; /* svc-pdf answered something that is not a ChunksResponse */
	if (err == CM_OK && ((Pdf__ChunksResponse *)resp)->n_chunks == 0) {
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		cq.id = q->doc;
		cq.first_page = 1;
		cq.last_page = CHAT_FALLBACK_PAGES;
		err = call(q->s, q->who, "pdf.Chunks", &cq.base, &pdf__chunks_response__descriptor,
		           &resp);
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
		err = add_chunk(q->s, q->who, q->doc, chunks->chunks[i], &pc, ps);
	if (err != CM_OK)
		snprintf(why, whylen, "out of memory");
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	for (int i = 0; i < pc.n; i++)
		protobuf_c_message_free_unpacked(&pc.msg[i]->base, NULL);
	search_free(q);
	return err;
}

cm_err
chat_retrieve(chat_service *s, const chat_caller *who, const char *document_id,
              const char *question, chat_passages *ps, char *why, size_t whylen)
{
	chat_search *q = NULL;
	cm_err       err;

	if ((err = chat_search_start(s, who, document_id, question, &q)) != CM_OK) {
		snprintf(why, whylen, "out of memory");
		return err;
	}
	return chat_retrieve_finish(q, ps, why, whylen);
}
