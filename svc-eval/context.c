/*
 * context.c - source text from svc-pdf (context.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "context.h"
#include "proto/pdf.pb-c.h"
#include "text.h"

#define CONTEXT_PAGES 64 /* pages remembered per attempt */
#define SEARCH_WORDS 4
#define SEARCH_CHUNKS 2

typedef struct page_text {
	int   page;
	char *text;
} page_text;

struct eval_context {
	eval_service *svc;
	const char   *owner;
	const char   *document_id;
	page_text     pages[CONTEXT_PAGES];
	size_t        npages;
};

cm_err
eval_context_alloc(eval_context **out, eval_service *s, const char *owner,
                   const char *document_id)
{
	eval_context *c = calloc(1, sizeof(*c));

	*out = c;
	if (c == NULL)
		return CM_ENOMEM;
	c->svc = s;
	c->owner = owner;
	c->document_id = document_id;
	return CM_OK;
}

void
eval_context_free(eval_context *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->npages; i++)
		free(c->pages[i].text);
	free(c);
}

static char *
clipped(const char *s)
{
	return strndup(s, eval_utf8_clip(s, EVAL_MAX_CONTEXT));
}

static void
call_opts(eval_context *c, cm_rpc_call_opts *o, const char *method)
{
	memset(o, 0, sizeof(*o));
	o->method = method;
	o->subject = c->owner;
	o->deadline_ms = cm_now_ms() + EVAL_UPSTREAM_TIMEOUT_MS;
	o->idempotent = true;
}

/* NOT_FOUND (document or page gone) is no text; anything else but OK is unavailable. */
static cm_err
upstream_err(cm_err err, const cm_rpc_result *res, const char *what)
{
	if (err == CM_OK || err == CM_ENOTFOUND || err == CM_EINVAL)
		return CM_OK;
	cm_warn("EVAL-PDF-FAIL", "%s: %s (%s)", what, cm_strerror(err), res->message);
	return CM_EUNAVAIL;
}

static cm_err
get_page(eval_context *c, int page, char **text)
{
	Pdf__GetPageRequest rq = PDF__GET_PAGE_REQUEST__INIT;
	cm_rpc_call_opts    o;
	cm_rpc_result       res;
	ProtobufCMessage   *resp = NULL;
	cm_err              err;

	for (size_t i = 0; i < c->npages; i++)
		if (c->pages[i].page == page)
			return (*text = strdup(c->pages[i].text)) != NULL ? CM_OK : CM_ENOMEM;
	rq.id = (char *)c->document_id;
	rq.page = page;
	call_opts(c, &o, "pdf.GetPage");
	err = cm_rpc_call(c->svc->pdf, &o, &rq.base, &pdf__page__descriptor, &resp, &res);
	*text = clipped(err == CM_OK ? ((Pdf__Page *)resp)->text : "");
	err = upstream_err(err, &res, "pdf.GetPage");
	cm_rpc_result_fini(&res);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (*text == NULL)
		return CM_ENOMEM;
	if (err == CM_OK && c->npages < CONTEXT_PAGES) {
		if ((c->pages[c->npages].text = strdup(*text)) != NULL)
			c->pages[c->npages++].page = page;
	}
	return err;
}

/* The longest distinct key words of the question (and reference), longest first. */
typedef struct words_ctx {
	char   w[16][48];
	size_t n;
} words_ctx;

static bool
take_word(void *arg, const char *word, size_t len, uint64_t h)
{
	words_ctx *c = arg;

	(void)h;
	if (len < 4 || len >= sizeof(c->w[0]))
		return true;
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->w[i]) == len && memcmp(c->w[i], word, len) == 0)
			return true;
	if (c->n < 16) {
		memcpy(c->w[c->n], word, len);
		c->w[c->n++][len] = '\0';
	}
	return c->n < 16;
}

static int
by_length(const void *a, const void *b)
{
	size_t x = strlen(a), y = strlen(b);

	return x > y ? -1 : x < y ? 1 : 0;
}

static cm_err
search(eval_context *c, const char *question, const char *reference, char **text)
{
	words_ctx wc;
	cm_buf    q, out;
	cm_err    err = CM_OK;
	static const size_t tries[] = {SEARCH_WORDS, 2, 1};

	*text = NULL;
	memset(&wc, 0, sizeof(wc));
	cm_buf_init(&q, 1024);
	cm_buf_init(&out, 1u << 20); /* clipped at the end */
	if (eval_terms_each(question, take_word, &wc) != CM_OK ||
	    (wc.n < SEARCH_WORDS && eval_terms_each(reference, take_word, &wc) != CM_OK)) {
		err = CM_ENOMEM;
		goto out;
	}
	/* Stable: equal lengths keep their order of appearance. */
	for (size_t i = 1; i < wc.n; i++)
		for (size_t k = i; k > 0 && by_length(wc.w[k - 1], wc.w[k]) > 0; k--) {
			char t[48];
			memcpy(t, wc.w[k], sizeof(t));
			memcpy(wc.w[k], wc.w[k - 1], sizeof(t));
			memcpy(wc.w[k - 1], t, sizeof(t));
		}
	for (size_t t = 0; t < sizeof(tries) / sizeof(tries[0]) && out.len == 0 && wc.n > 0; t++) {
		Pdf__SearchRequest rq = PDF__SEARCH_REQUEST__INIT;
		cm_rpc_call_opts   o;
		cm_rpc_result      res;
		ProtobufCMessage  *resp = NULL;
		size_t             k = tries[t] < wc.n ? tries[t] : wc.n;

		if (t > 0 && tries[t - 1] >= wc.n && k == wc.n)
			continue; /* the same query again */
		cm_buf_reset(&q);
		for (size_t i = 0; i < k; i++)
			if (cm_buf_printf(&q, "%s%s", i > 0 ? " " : "", wc.w[i]) != CM_OK) {
				err = CM_ENOMEM;
				goto out;
			}
		rq.id = (char *)c->document_id;
		rq.query = q.data;
		rq.limit = SEARCH_CHUNKS;
		call_opts(c, &o, "pdf.Search");
		err = cm_rpc_call(c->svc->pdf, &o, &rq.base, &pdf__chunks_response__descriptor, &resp,
		                  &res);
		if (err == CM_OK) {
			Pdf__ChunksResponse *cr = (Pdf__ChunksResponse *)resp;
			for (size_t i = 0; i < cr->n_chunks; i++)
				if (cm_buf_printf(&out, "%s%s", i > 0 ? "\n" : "", cr->chunks[i]->text) !=
				    CM_OK)
					break; /* full: what fits is enough */
		}
		err = upstream_err(err, &res, "pdf.Search");
		cm_rpc_result_fini(&res);
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		if (err != CM_OK)
			goto out;
	}
	*text = clipped(out.data != NULL ? out.data : "");
	if (*text == NULL)
		err = CM_ENOMEM;
out:
	cm_buf_fini(&q);
	cm_buf_fini(&out);
	return err;
}

cm_err
eval_context_get(eval_context *c, int page, const char *question, const char *reference,
                 char **text)
{
	*text = NULL;
	if (c->document_id == NULL || !cm_uuid_valid(c->document_id))
		return (*text = strdup("")) != NULL ? CM_OK : CM_ENOMEM;
	if (page > 0)
		return get_page(c, page, text);
	return search(c, question, reference, text);
}
