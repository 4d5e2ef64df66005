/*
 * llm_http.c - one HTTP attempt at /chat/completions over a reused libcurl easy handle.
 *
 * DESIGN. The handle comes from the client's pool and is curl_easy_reset() before each attempt,
 * which keeps its connection cache, so calls to the same provider reuse a keep-alive connection.
 * The request body is built with jansson. A plain answer is collected into a capped buffer and
 * parsed at the end; a streamed answer (status 200 with stream on) is split into server-sent
 * event lines as bytes arrive: each `data: {...}` chunk's delta goes to the caller's callback at
 * once, `data: [DONE]` ends it, and a stream that ends without [DONE] or a finish_reason is a cut
 * stream (CM_EUNAVAIL). Any other status keeps its body for the error classification (quota is
 * recognised by error.code or error.type "insufficient_quota"). Retry-After (seconds) and
 * retry-after-ms come from the header callback. The Authorization header is built in a buffer
 * that is wiped, and curl's copy in the slist is wiped before it is freed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cm/log.h"
#include "cm/util.h"
#include "llm_int.h"

typedef struct xfer {
	CURL             *curl;
	const cm_llm_req *req;
	cm_buf            body;    /* whole body (plain answers and errors) */
	cm_buf            line;    /* the SSE line being assembled */
	cm_buf            content; /* the content so far */
	bool              stream;  /* parsing SSE */
	bool              done;    /* [DONE] seen */
	bool              canceled;
	bool              delivered;
	bool              toobig;
	bool              bad_event;
	char              finish[24];
	int64_t           prompt_tokens, completion_tokens;
	int64_t           retry_after_ms;
} xfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode       global_rc = CURLE_OK;

static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

cm_err
cm_llm_http_global_init(void)
{
	pthread_once(&global_once, global_init);
	return global_rc == CURLE_OK ? CM_OK : CM_EINTERNAL;
}

void
cm_llm_http_free(void *curl)
{
	if (curl != NULL)
		curl_easy_cleanup(curl);
}

static void
take_usage(xfer *x, json_t *root)
{
	json_t *u = json_object_get(root, "usage");

	if (!json_is_object(u))
		return;
	if (json_is_integer(json_object_get(u, "prompt_tokens")))
		x->prompt_tokens = json_integer_value(json_object_get(u, "prompt_tokens"));
	if (json_is_integer(json_object_get(u, "completion_tokens")))
		x->completion_tokens = json_integer_value(json_object_get(u, "completion_tokens"));
}

static void
take_finish(xfer *x, json_t *choice)
{
	json_t *f = json_object_get(choice, "finish_reason");

	if (json_is_string(f))
		cm_strlcpy(x->finish, json_string_value(f), sizeof(x->finish));
}

/* One `data:` payload of a stream. */
static void
sse_event(xfer *x, const char *data, size_t n)
{
	json_error_t jerr;
	json_t      *root = NULL, *choice, *delta, *text;

	if (n == 6 && memcmp(data, "[DONE]", 6) == 0) {
		x->done = true;
		goto out;
	}
	if ((root = json_loadb(data, n, 0, &jerr)) == NULL || !json_is_object(root)) {
		x->bad_event = true;
		goto out;
	}
	take_usage(x, root);
	choice = json_array_get(json_object_get(root, "choices"), 0);
	if (!json_is_object(choice))
		goto out; /* e.g. the usage-only chunk of stream_options.include_usage */
	take_finish(x, choice);
	delta = json_object_get(choice, "delta");
	text = json_object_get(delta, "content");
	if (json_is_string(text) && json_string_length(text) > 0) {
		const char *s = json_string_value(text);
		size_t      l = json_string_length(text);

		if (cm_buf_append(&x->content, s, l) != CM_OK) {
			x->toobig = true;
			goto out;
		}
		x->delivered = true;
		if (!x->req->on_delta(x->req->arg, s, l))
			x->canceled = true;
	}
out:
	json_decref(root);
}

/* Splits bytes into lines; "data:" lines are events, everything else (comments, event:, id:)
 * is ignored as SSE says. */
static bool
sse_feed(xfer *x, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !x->canceled && !x->toobig; i++) {
		if (p[i] != '\n') {
			if (cm_buf_append(&x->line, p + i, 1) != CM_OK)
				x->toobig = true;
			continue;
		}
		if (x->line.len > 0 && x->line.data[x->line.len - 1] == '\r')
			x->line.data[--x->line.len] = '\0';
		if (x->line.len >= 5 && memcmp(x->line.data, "data:", 5) == 0) {
			size_t off = x->line.len > 5 && x->line.data[5] == ' ' ? 6 : 5;
			sse_event(x, x->line.data + off, x->line.len - off);
		}
		cm_buf_reset(&x->line);
	}
	return !x->canceled && !x->toobig;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	xfer  *x = arg;
	size_t n = size * nmemb;
	long   status = 0;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (x->stream && status == 200)
		return sse_feed(x, p, n) ? n : 0;
	if (cm_buf_append(&x->body, p, n) != CM_OK) {
		x->toobig = true;
		return 0;
	}
	return n;
}

static bool
header_is(const char *h, size_t n, const char *name, const char **val)
{
	size_t l = strlen(name);

	if (n <= l || strncasecmp(h, name, l) != 0 || h[l] != ':')
		return false;
	*val = h + l + 1;
	return true;
}

static size_t
on_header(char *h, size_t size, size_t nmemb, void *arg)
{
	xfer       *x = arg;
	size_t      n = size * nmemb;
	const char *v;
	char        num[24];
	size_t      k = 0;
	int64_t     val;

	if (header_is(h, n, "retry-after", &v) || header_is(h, n, "retry-after-ms", &v)) {
		bool ms = h[11] == '-';

		while (v < h + n && (*v == ' ' || *v == '\t'))
			v++;
		while (v + k < h + n && k + 1 < sizeof(num) && v[k] >= '0' && v[k] <= '9') {
			num[k] = v[k];
			k++;
		}
		num[k] = '\0';
		/* An HTTP-date Retry-After is not parsed: the backoff applies instead. */
		if (k > 0 && cm_parse_i64(num, &val))
			x->retry_after_ms = ms ? val : val * 1000;
	}
	return n;
}

static cm_err
build_body(const cm_llm_prov *p, const cm_llm_req *req, char **out)
{
	json_t *root = json_object(), *msgs = json_array(), *m;
	cm_err  err = CM_ENOMEM;

	*out = NULL;
	if (root == NULL || msgs == NULL)
		goto out;
	for (size_t i = 0; i < req->nmsgs; i++) {
		if ((m = json_object()) == NULL || json_array_append_new(msgs, m) != 0 ||
		    json_object_set_new(m, "role", json_string(req->msgs[i].role)) != 0 ||
		    json_object_set_new(m, "content", json_string(req->msgs[i].content)) != 0) {
			err = CM_EINVAL; /* also a role or content that is not UTF-8 */
			goto out;
		}
	}
	if (json_object_set_new(root, "model", json_string(p->model)) != 0 ||
	    json_object_set(root, "messages", msgs) != 0)
		goto out;
	if (req->max_tokens > 0 &&
	    json_object_set_new(root, "max_tokens", json_integer(req->max_tokens)) != 0)
		goto out;
	if (req->temperature >= 0 &&
	    json_object_set_new(root, "temperature", json_real(req->temperature)) != 0)
		goto out;
	if (req->json_mode && json_object_set_new(root, "response_format",
	                                          json_pack("{s:s}", "type", "json_object")) != 0)
		goto out;
	if (req->on_delta != NULL &&
	    (json_object_set_new(root, "stream", json_true()) != 0 ||
	     json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1)) !=
	         0))
		goto out;
	if ((*out = json_dumps(root, JSON_COMPACT)) != NULL)
		err = CM_OK;
out:
	json_decref(msgs);
	json_decref(root);
	return err;
}

static bool
add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (n == NULL)
		return false;
	*list = n;
	return true;
}

static void seterr(cm_llm_attempt *at, cm_llm_outcome o, cm_err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
seterr(cm_llm_attempt *at, cm_llm_outcome o, cm_err e, const char *fmt, ...)
{
	va_list ap;

	at->outcome = o;
	at->err = e;
	va_start(ap, fmt);
	(void)vsnprintf(at->errmsg, sizeof(at->errmsg), fmt, ap);
	va_end(ap);
}

/* A non-200 answer: what kind of failure it is. */
static void
classify_status(xfer *x, cm_llm_attempt *at)
{
	json_error_t jerr;
	json_t *root = json_loadb(x->body.data != NULL ? x->body.data : "", x->body.len, 0, &jerr);
	json_t *e = json_object_get(root, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *type = json_string_value(json_object_get(e, "type"));
	bool        quota = (code != NULL && strcmp(code, "insufficient_quota") == 0) ||
	             (type != NULL && strcmp(type, "insufficient_quota") == 0);

	if (quota || at->status == 401 || at->status == 403)
		seterr(at, CM_LLM_QUOTA, CM_EPERM, "HTTP %d: %s", at->status,
		       quota ? "quota exhausted" : "API key refused");
	else if (at->status == 429)
		seterr(at, CM_LLM_RATE_LIMITED, CM_ELIMIT, "HTTP 429: rate limited");
	else if (at->status == 408 || at->status >= 500)
		seterr(at, CM_LLM_UNAVAILABLE, CM_EUNAVAIL, "HTTP %d from the provider",
		       at->status);
	else
		seterr(at, CM_LLM_INVALID, CM_EINVAL, "HTTP %d: %.120s", at->status,
		       json_is_string(json_object_get(e, "message"))
		           ? json_string_value(json_object_get(e, "message"))
		           : "request refused");
	json_decref(root);
}

/* A complete 200 answer without streaming. */
static void
parse_plain(xfer *x, cm_llm_attempt *at)
{
	json_error_t jerr;
	json_t *root = json_loadb(x->body.data != NULL ? x->body.data : "", x->body.len, 0, &jerr);
	json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
	json_t *text = json_object_get(json_object_get(choice, "message"), "content");

	if (!json_is_object(root) || !json_is_string(text)) {
		seterr(at, CM_LLM_MALFORMED, CM_EPROTO, "the answer is not a chat completion");
		goto out;
	}
	take_usage(x, root);
	take_finish(x, choice);
	if (cm_buf_append(&x->content, json_string_value(text), json_string_length(text)) !=
	    CM_OK) {
		seterr(at, CM_LLM_MALFORMED, CM_ETOOBIG, "answer too big");
		goto out;
	}
	at->outcome = CM_LLM_OK;
	at->err = CM_OK;
out:
	json_decref(root);
}

/* libcurl's progress callback: a non-zero return aborts the transfer (req->cancel set). */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (atomic_load(x->req->cancel))
		x->canceled = true;
	return x->canceled ? 1 : 0;
}

static void
transport_error(xfer *x, CURLcode rc, cm_llm_attempt *at)
{
	if (x->canceled)
		seterr(at, CM_LLM_CANCELED, CM_ECANCELED, "canceled by the caller");
	else if (x->toobig)
		seterr(at, CM_LLM_MALFORMED, CM_ETOOBIG, "answer larger than %u bytes",
		       CM_LLM_MAX_BODY);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		seterr(at, CM_LLM_TIMEOUT, CM_ETIMEDOUT, "no complete answer in time (%s)",
		       curl_easy_strerror(rc));
	else
		seterr(at, CM_LLM_UNAVAILABLE, CM_EUNAVAIL, "%s", curl_easy_strerror(rc));
}

void
cm_llm_http_attempt(cm_llm *llm, cm_llm_conn *c, cm_llm_prov *p, const cm_llm_req *req,
                    int64_t timeout_ms, cm_llm_result *res, cm_llm_attempt *at)
{
	struct curl_slist *hdrs = NULL, *h;
	char              *body = NULL;
	CURLcode           rc;
	long               status = 0;
	xfer               x;

	memset(at, 0, sizeof(*at));
	memset(&x, 0, sizeof(x));
	cm_buf_init(&x.body, CM_LLM_MAX_BODY);
	cm_buf_init(&x.line, CM_LLM_MAX_BODY);
	cm_buf_init(&x.content, CM_LLM_MAX_BODY);
	x.req = req;
	x.stream = req->on_delta != NULL;
	x.prompt_tokens = x.completion_tokens = -1;
	if (c->curl == NULL && (c->curl = curl_easy_init()) == NULL) {
		seterr(at, CM_LLM_UNAVAILABLE, CM_ENOMEM, "curl_easy_init failed");
		goto out;
	}
	x.curl = c->curl;
	if ((at->err = build_body(p, req, &body)) != CM_OK) {
		seterr(at, CM_LLM_INVALID, at->err, "cannot encode the request");
		goto out;
	}
	if (!add_header(&hdrs, "Content-Type: application/json") || !add_header(&hdrs, "Expect:") ||
	    !add_header(&hdrs,
	                x.stream ? "Accept: text/event-stream" : "Accept: application/json") ||
	    (p->auth != NULL && !add_header(&hdrs, p->auth))) {
		seterr(at, CM_LLM_UNAVAILABLE, CM_ENOMEM, "out of memory");
		goto out;
	}
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, p->url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)llm->cfg.connect_timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (x.stream) {
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME,
		                 (long)(llm->cfg.stream_idle_ms + 999) / 1000);
	}
	if (req->cancel != NULL) {
		curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &x);
	}
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	at->status = (int)status;
	at->retry_after_ms = x.retry_after_ms;
	at->delivered = x.delivered;
	if (rc != CURLE_OK && !(x.stream && status == 200 && rc == CURLE_PARTIAL_FILE && x.done)) {
		if (x.stream && status == 200 && !x.canceled && !x.toobig &&
		    rc != CURLE_OPERATION_TIMEDOUT)
			seterr(at, CM_LLM_UNAVAILABLE, CM_EUNAVAIL, "stream cut: %s",
			       curl_easy_strerror(rc));
		else
			transport_error(&x, rc, at);
		goto out;
	}
	if (status != 200) {
		classify_status(&x, at);
		goto out;
	}
	if (!x.stream) {
		parse_plain(&x, at);
		if (at->err != CM_OK)
			goto out;
	} else if (x.bad_event) {
		seterr(at, CM_LLM_MALFORMED, CM_EPROTO, "a stream event is not JSON");
		goto out;
	} else if (!x.done && x.finish[0] == '\0') {
		seterr(at, CM_LLM_UNAVAILABLE, CM_EUNAVAIL, "stream ended without [DONE]");
		goto out;
	}
	at->outcome = CM_LLM_OK;
	at->err = CM_OK;
out:
	/* Whatever arrived is the result's, also after a failure (a cut stream, a JSON-mode retry).
	 */
	if (x.content.len > 0) {
		char  *s = NULL;
		size_t n = 0;

		if (cm_buf_take(&x.content, &s, &n) == CM_OK) {
			free(res->content);
			res->content = s;
			res->content_len = n;
		}
	}
	cm_strlcpy(res->finish_reason, x.finish, sizeof(res->finish_reason));
	if (at->err == CM_OK) {
		/* Providers that send no usage in streams: estimate (bytes / 4) rather than count
		 * 0. */
		if (x.prompt_tokens < 0) {
			x.prompt_tokens = 0;
			for (size_t i = 0; i < req->nmsgs; i++)
				x.prompt_tokens += (int64_t)(strlen(req->msgs[i].content) + 3) / 4;
		}
		if (x.completion_tokens < 0)
			x.completion_tokens = (int64_t)(res->content_len + 3) / 4;
		res->prompt_tokens = x.prompt_tokens;
		res->completion_tokens = x.completion_tokens;
	}
	for (h = hdrs; h != NULL; h = h->next)
		cm_wipe(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	free(body);
	cm_buf_fini(&x.body);
	cm_buf_fini(&x.line);
	cm_buf_fini(&x.content);
}
