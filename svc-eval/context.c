/*
 * context.c - source text from svc-pdf (context.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "context.h"
#include "proto/pdf.pb-c.h"
#include "text.h"

#define CONTEXT_PAGES 64 /* pages remembered per attempt */
#define SEARCH_WORDS 3
#define SEARCH_CHUNKS 2
#define MAX_WORDS 24

typedef struct page_text {
	int   page;
	char *text;
} page_text;

struct eval_context {
	eval_service *svc;
	cm_redis     *redis;
	const char   *owner;
	const char   *document_id;
	const char   *sha256;
	page_text     pages[CONTEXT_PAGES];
	size_t        npages;
};

cm_err
eval_context_alloc(eval_context **out, eval_service *s, cm_redis *redis, const char *owner,
                   const char *document_id, const char *sha256)
{
	eval_context *c = calloc(1, sizeof(*c));

	*out = c;
	if (c == NULL)
		return CM_ENOMEM;
	c->svc = s;
	c->redis = redis;
	c->owner = owner;
	c->document_id = document_id;
	c->sha256 = sha256 != NULL ? sha256 : "";
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

/* Search words: distinct key words, ranked by where they come from (reference, quoted part of
 * the question, the rest), then by length. */
typedef struct words_ctx {
	char   w[MAX_WORDS][48];
	int    rank[MAX_WORDS];
	size_t n;
	int    from;
} words_ctx;

/* Words of question templates: they match everywhere, or nowhere. */
static const char *const template_words[] = {
    "answer",   "according", "complete", "completes", "describe", "discuss",  "document",
    "explain",  "following", "mention",  "mentions",  "passage",  "question", "says",
    "sentence", "statement", "text",     "word",      "words",    "write",
};

static bool
take_word(void *arg, const char *word, size_t len, uint64_t h)
{
	words_ctx *c = arg;

	(void)h;
	if (len < 4 || len >= sizeof(c->w[0]))
		return true;
	for (size_t i = 0; i < sizeof(template_words) / sizeof(template_words[0]); i++)
		if (strlen(template_words[i]) == len && memcmp(template_words[i], word, len) == 0)
			return true;
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->w[i]) == len && memcmp(c->w[i], word, len) == 0)
			return true;
	memcpy(c->w[c->n], word, len);
	c->w[c->n][len] = '\0';
	c->rank[c->n++] = c->from;
	return c->n < MAX_WORDS;
}

/* The quoted parts of s ("..." and the typographic quotes), space-separated, into out. */
static cm_err
quoted(const char *s, cm_buf *out)
{
	bool   in = false;
	cm_err err;

	for (const char *p = s; *p != '\0'; p++) {
		bool mark = *p == '"' || (strncmp(p, "\xe2\x80\x9c", 3) == 0) ||
		            (strncmp(p, "\xe2\x80\x9d", 3) == 0);
		if (mark) {
			in = !in;
			if ((err = cm_buf_append(out, " ", 1)) != CM_OK)
				return err;
			if (*p != '"')
				p += 2;
			continue;
		}
		if (in && (err = cm_buf_append(out, p, 1)) != CM_OK)
			return err;
	}
	return cm_buf_append(out, "", 0);
}

static bool
before(const words_ctx *c, size_t a, size_t b)
{
	if (c->rank[a] != c->rank[b])
		return c->rank[a] < c->rank[b];
	return strlen(c->w[a]) > strlen(c->w[b]);
}

static cm_err
search_words(const char *question, const char *reference, words_ctx *wc)
{
	cm_buf q;
	cm_err err;

	memset(wc, 0, sizeof(*wc));
	cm_buf_init(&q, strlen(question) + 16);
	wc->from = 0;
	if ((err = eval_terms_each(reference, take_word, wc)) != CM_OK)
		goto out;
	wc->from = 1;
	if ((err = quoted(question, &q)) != CM_OK ||
	    (err = eval_terms_each(q.data, take_word, wc)) != CM_OK)
		goto out;
	wc->from = 2;
	if ((err = eval_terms_each(question, take_word, wc)) != CM_OK)
		goto out;
	/* Stable insertion sort: equal ranks and lengths keep their order of appearance. */
	for (size_t i = 1; i < wc->n; i++)
		for (size_t k = i; k > 0 && before(wc, k, k - 1); k--) {
			char t[48];
			int  r = wc->rank[k];
			memcpy(t, wc->w[k], sizeof(t));
			memcpy(wc->w[k], wc->w[k - 1], sizeof(t));
			memcpy(wc->w[k - 1], t, sizeof(t));
			wc->rank[k] = wc->rank[k - 1];
			wc->rank[k - 1] = r;
		}
out:
	cm_buf_fini(&q);
	return err;
}

/* "eval:ctx:v<prompt>:<sha256>:<sha256(question NUL reference)>". */
static void
ctx_key(const eval_context *c, const char *question, const char *reference, char *out,
        size_t outlen)
{
	crypto_hash_sha256_state st;
	unsigned char            h[crypto_hash_sha256_BYTES];
	char                     hex[2 * crypto_hash_sha256_BYTES + 1];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)question, strlen(question) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)reference, strlen(reference));
	crypto_hash_sha256_final(&st, h);
	cm_hex(h, sizeof(h), hex);
	snprintf(out, outlen, "eval:ctx:v%d:%s:%s", EVAL_PROMPT_VERSION, c->sha256, hex);
}

static cm_err
search(eval_context *c, const char *question, const char *reference, char **text)
{
	static const size_t tries[] = {SEARCH_WORDS, 1};
	words_ctx           wc;
	cm_buf              q, out;
	char                key[200] = "";
	bool                found = false;
	cm_err              err = CM_OK;

	*text = NULL;
	cm_buf_init(&q, 1024);
	cm_buf_init(&out, 1u << 20); /* clipped at the end */
	if (c->sha256[0] != '\0' && c->svc->cfg.cache_ttl_s > 0) {
		ctx_key(c, question, reference, key, sizeof(key));
		if (cm_redis_get(c->redis, key, &out, &found) == CM_OK && found)
			goto done;
		cm_buf_reset(&out);
	}
	if ((err = search_words(question, reference, &wc)) != CM_OK)
		goto out;
	for (size_t t = 0; t < sizeof(tries) / sizeof(tries[0]) && out.len == 0 && wc.n > 0; t++) {
		Pdf__SearchRequest rq = PDF__SEARCH_REQUEST__INIT;
		cm_rpc_call_opts   o;
		cm_rpc_result      res;
		ProtobufCMessage  *resp = NULL;
		size_t             k = tries[t] < wc.n ? tries[t] : wc.n;

		if (t > 0 && k >= wc.n)
			break; /* the same query again */
		cm_buf_reset(&q);
		for (size_t i = 0; i < k; i++)
			if ((err = cm_buf_printf(&q, "%s%s", i > 0 ? " " : "", wc.w[i])) != CM_OK)
				goto out;
		rq.id = (char *)c->document_id;
		rq.query = q.data;
		rq.limit = SEARCH_CHUNKS;
		call_opts(c, &o, "pdf.Search");
		err = cm_rpc_call(c->svc->pdf, &o, &rq.base, &pdf__chunks_response__descriptor,
		                  &resp, &res);
		if (err == CM_OK) {
			Pdf__ChunksResponse *cr = (Pdf__ChunksResponse *)resp;
			for (size_t i = 0; i < cr->n_chunks; i++)
				if (cm_buf_printf(&out, "%s%s", i > 0 ? "\n" : "",
				                  cr->chunks[i]->text) != CM_OK)
					break; /* full: what fits is enough */
		}
		err = upstream_err(err, &res, "pdf.Search");
		cm_rpc_result_fini(&res);
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		if (err != CM_OK)
			goto out;
	}
	if (key[0] != '\0' && cm_buf_append(&out, "", 0) == CM_OK) {
		size_t keep = eval_utf8_clip(out.data, EVAL_MAX_CONTEXT);
		if (cm_redis_set(c->redis, key, out.data, keep, c->svc->cfg.cache_ttl_s) != CM_OK)
			cm_debug("EVAL-CTX-CACHE", "source text not cached: %s",
			         cm_redis_errmsg(c->redis));
	}
done:
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
