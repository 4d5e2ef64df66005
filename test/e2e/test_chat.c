/*
 * test_chat.c - chat end to end: edge -> svc-chat (two replicas) -> svc-pdf and the fake LLM
 * (test/fakellm on 127.0.0.1:28500: its chat convention quotes the passage sentences sharing the
 * question's key words, each followed by [p. N], or says exactly "I could not find the answer in
 * the document."; /_control slows it down or cuts its streams).
 *
 * The document is the real-prose PDF of test_qgen.c and test_eval.c. Questions are made of words
 * read from its pages (GET /api/v1/documents/{id}/pages/{n}), so the answer must quote the
 * document; every quote is checked against the text of the page it cites. Covered: the legacy
 * chat as the frontend runs it, on one kept-alive connection with the session cookie (history
 * empty, POST /api/chat and /api/chat/, the history in order, clearing it), 401 without a
 * session and 400 without a selected PDF; v1 chats (201, deltas over the WebSocket arriving while
 * the POST is still open, chat.done, citations, the stored messages, other users, bad content);
 * a question the document cannot answer; the model's stream cut half way (v1: an error and an
 * incomplete stored message; legacy: 200 with a plain explanation). Tests that change the fake
 * restore it in their teardown.
 */
#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"
#include "ws_client.h"

#define FAKE "http://127.0.0.1:28500"
#define PASSWORD "chatting!"
#define NOT_FOUND "I could not find the answer in the document."
#define MAX_QUOTES 8

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
static char              user_a[4200], user_b[4200]; /* "Authorization: Bearer ..." */
static char              doc_a[64];                  /* user a's copy of the PDF */
static char             *pdf;                        /* the real-prose PDF */
static size_t            pdf_len;

/* ---- the fake LLM ---------------------------------------------------------------------------- */

/* A request to the fake LLM itself; returns the parsed JSON answer or NULL (http_client.h). */
static json_t *
fake(const char *method, const char *path, const char *body)
{
	return http_fake(FAKE, method, path, body);
}

static void
fake_set(const char *settings)
{
	json_t *v = fake("POST", "/_control", settings);

	assert_non_null(v);
	assert_null(json_object_get(v, "error"));
	json_decref(v);
}

/* Teardown: the fake as it started, whatever the test did to it. */
static int
fake_restore(void **state)
{
	json_t *v = fake("POST", "/_reset", "{\"config\":true}");

	(void)state;
	json_decref(v);
	return v != NULL ? 0 : -1;
}

/* A counter of /_stats: stats[key] or stats[key][sub]. */
static long
fake_stat(const char *key, const char *sub)
{
	json_t *v = fake("GET", "/_stats", NULL);
	json_t *o;
	long    n;

	assert_non_null(v);
	o = json_object_get(v, key);
	if (sub != NULL)
		o = json_object_get(o, sub);
	n = (long)json_integer_value(o);
	json_decref(v);
	return n;
}

/* ---- the edge -------------------------------------------------------------------------------- */

static void
register_user(char *email, size_t n)
{
	assert_int_equal(http_register("c", PASSWORD, email, n), 0);
}

static void
login_new_user(char *bearer, size_t n)
{
	assert_int_equal(http_new_user("c", PASSWORD, bearer, n), 0);
}

static long
call(const char *auth, const char *method, const char *path, const char *body, http_resp *r)
{
	long st = http_json(auth, method, path, body, r);

	assert_true(st >= 0);
	return st;
}

/* A JSON body {key: text} (escaped by jansson); free() it. */
static char *
body_of(const char *key, const char *text)
{
	json_t *v = json_pack("{s:s}", key, text);
	char   *s = json_dumps(v, JSON_COMPACT);

	json_decref(v);
	assert_non_null(s);
	return s;
}

/* ---- the document ---------------------------------------------------------------------------- */

/* s with every run of whitespace made one space, trimmed; malloc'd. */
static char *
squash(const char *s)
{
	size_t n = strlen(s), k = 0;
	char  *out = malloc(n + 1);
	bool   space = false;

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		if (isspace((unsigned char)s[i])) {
			space = k > 0;
			continue;
		}
		if (space)
			out[k++] = ' ';
		space = false;
		out[k++] = s[i];
	}
	out[k] = '\0';
	return out;
}

/* Page n of user a's copy of the PDF, whitespace squashed; malloc'd. */
static char *
page_text(int n)
{
	char      path[160];
	http_resp r;
	char     *t;

	snprintf(path, sizeof(path), "/api/v1/documents/%s/pages/%d", doc_a, n);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "page")), n);
	t = squash(js(r.json, "text"));
	http_resp_free(&r);
	return t;
}

/* A question made of three distinct lower-case words (8+ letters) of page n's body (after its
 * first third, away from the running header every page repeats): the document answers it. */
static void
question_from_page(int n, char *q, size_t qlen)
{
	char       *t = page_text(n);
	char        words[3][64];
	int         nw = 0;
	const char *p = t + strlen(t) / 3;

	while (*p != '\0' && nw < 3) {
		size_t len = 0;
		while (islower((unsigned char)p[len]))
			len++;
		if (len >= 8 && len < sizeof(words[0]) &&
		    (p == t || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[len])) {
			bool dup = false;
			for (int i = 0; i < nw; i++)
				dup = dup || (strlen(words[i]) == len &&
				              strncasecmp(words[i], p, len) == 0);
			if (!dup) {
				memcpy(words[nw], p, len);
				words[nw++][len] = '\0';
			}
		}
		while (isalpha((unsigned char)p[len]))
			len++; /* the rest of a word with capitals */
		p += len > 0 ? len : 1;
	}
	free(t);
	assert_int_equal(nw, 3);
	snprintf(q, qlen, "Explain %s, %s and %s.", words[0], words[1], words[2]);
}

typedef struct quote {
	char *text; /* squashed, without the fake's " ..." clip mark; malloc'd */
	int   page;
} quote;

/* The fake's quotes in an answer: `says: "<text>" [p. N]`. Returns how many. */
static int
quotes_of(const char *answer, quote *out, int cap)
{
	const char *p = answer;
	int         n = 0;

	while (n < cap && (p = strstr(p, "says: \"")) != NULL) {
		const char *start = p + strlen("says: \""), *end = strstr(start, "\" [p. ");
		char       *raw;
		size_t      len;
		int64_t     page;
		char        num[16];
		size_t      k = 0;

		if (end == NULL)
			break;
		len = (size_t)(end - start);
		if (len >= 4 && memcmp(start + len - 4, " ...", 4) == 0)
			len -= 4;
		raw = strndup(start, len);
		assert_non_null(raw);
		out[n].text = squash(raw);
		free(raw);
		for (const char *d = end + strlen("\" [p. "); isdigit((unsigned char)*d) && k < 15;
		     d++)
			num[k++] = *d;
		num[k] = '\0';
		assert_true(cm_parse_i64(num, &page));
		out[n++].page = (int)page;
		p = end;
	}
	return n;
}

static void
quotes_free(quote *q, int n)
{
	for (int i = 0; i < n; i++)
		free(q[i].text);
}

/* Every quote of answer is in the text of the page it cites; returns how many there were, and
 * their pages in pages[] (when not NULL). */
static int
check_quotes(const char *answer, int *pages)
{
	quote q[MAX_QUOTES];
	int   n = quotes_of(answer, q, MAX_QUOTES);

	for (int i = 0; i < n; i++) {
		char *t = page_text(q[i].page);
		if (strstr(t, q[i].text) == NULL)
			fail_msg("page %d does not hold the quote \"%s\"", q[i].page, q[i].text);
		free(t);
		if (pages != NULL)
			pages[i] = q[i].page;
	}
	quotes_free(q, n);
	return n;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	char      path[512], cmd[1200];
	FILE     *f;
	long      len;
	http_resp r;

	(void)state;
	/* The same real-prose document as test_qgen.c (made once per state directory). */
	snprintf(path, sizeof(path), "%s/qgen-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	if (access(path, R_OK) != 0 && system(cmd) != 0)
		return -1;
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	if ((pdf = malloc((size_t)len)) == NULL || fread(pdf, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		return -1;
	}
	fclose(f);
	pdf_len = (size_t)len;
	fake_restore(NULL);

	login_new_user(user_a, sizeof(user_a));
	login_new_user(user_b, sizeof(user_b));
	const char *h[] = {user_a, "Content-Type: application/pdf", NULL};
	assert_int_equal(
	    http_do("POST", "/api/v1/documents?filename=manual.pdf", h, pdf, pdf_len, &r), 0);
	assert_int_equal(r.status, 201);
	snprintf(doc_a, sizeof(doc_a), "%s", js(r.json, "id"));
	http_resp_free(&r);
	assert_int_equal(
	    call(user_a, "POST", "/api/pdf/select", "{\"filename\":\"manual.pdf\"}", &r), 200);
	http_resp_free(&r);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(pdf);
	return 0;
}

/* ---- the legacy chat, as the frontend runs it ------------------------------------------------ */

static void
check_history_len(http_session *b, size_t n)
{
	http_resp r;

	assert_int_equal(http_session_do(b, "GET", "/api/chat/history", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(json_is_array(json_object_get(r.json, "history")));
	assert_int_equal(json_array_size(json_object_get(r.json, "history")), n);
	http_resp_free(&r);
}

/* Login, upload, history, two questions (/api/chat and /api/chat/), history, clear: one
 * connection, the session cookie, the frontend's shapes. */
static void
test_legacy_chat_flow(void **state)
{
	char          email[128], body[256], cookie[8300], q[2][256], ans[2][4096], ts[2][64];
	const char   *paths[2] = {"/api/chat", "/api/chat/"};
	http_session *b = http_session_open();
	http_resp     r;
	json_t       *h;

	(void)state;
	assert_non_null(b);
	question_from_page(4, q[0], sizeof(q[0]));
	question_from_page(7, q[1], sizeof(q[1]));
	register_user(email, sizeof(email));
	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"" PASSWORD "\"}", email);
	assert_int_equal(
	    http_session_do(b, "POST", "/api/auth/login", json_hdr, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, cookie, sizeof(cookie)));
	http_resp_free(&r);
	assert_int_equal(http_session_upload(b, "/api/pdf/upload", "file", "manual.pdf",
	                                     "application/pdf", pdf, pdf_len, &r),
	                 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);

	check_history_len(b, 0);
	for (int i = 0; i < 2; i++) {
		char *req = body_of("message", q[i]);
		assert_int_equal(
		    http_session_do(b, "POST", paths[i], json_hdr, req, strlen(req), &r), 0);
		free(req);
		assert_int_equal(r.status, 200);
		snprintf(ans[i], sizeof(ans[i]), "%s", js(r.json, "response"));
		snprintf(ts[i], sizeof(ts[i]), "%s", js(r.json, "timestamp"));
		http_resp_free(&r);
		/* Same bytes as user a's copy: its pages are this document's pages. */
		assert_true(check_quotes(ans[i], NULL) >= 1);
		assert_true(strlen(ts[i]) >= 19);
	}

	assert_int_equal(http_session_do(b, "GET", "/api/chat/history", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	h = json_object_get(r.json, "history");
	assert_int_equal(json_array_size(h), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *t = json_array_get(h, i);
		assert_string_equal(js(t, "user"), q[i]);
		assert_string_equal(js(t, "assistant"), ans[i]);
		assert_true(strlen(js(t, "timestamp")) >= 19);
	}
	assert_true(strcmp(js(json_array_get(h, 0), "timestamp"),
	                   js(json_array_get(h, 1), "timestamp")) <= 0);
	http_resp_free(&r);

	assert_int_equal(http_session_do(b, "DELETE", "/api/chat/history", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "message"), "Chat history cleared");
	http_resp_free(&r);
	check_history_len(b, 0);
	assert_int_equal(http_session_connects(b), 1);
	http_session_close(b);
}

/* No session: 401 on every chat route (not 404); a user without a selected PDF: 400. */
static void
test_legacy_chat_refusals(void **state)
{
	char      other[4200];
	http_resp r;

	(void)state;
	assert_int_equal(call(NULL, "POST", "/api/chat", "{\"message\":\"hello there\"}", &r), 401);
	assert_string_equal(js(r.json, "detail"), "Not authenticated");
	http_resp_free(&r);
	assert_int_equal(call(NULL, "POST", "/api/chat/", "{\"message\":\"hello there\"}", &r),
	                 401);
	assert_string_equal(js(r.json, "detail"), "Not authenticated");
	http_resp_free(&r);
	assert_int_equal(call(NULL, "GET", "/api/chat/history", NULL, &r), 401);
	http_resp_free(&r);
	assert_int_equal(call(NULL, "DELETE", "/api/chat/history", NULL, &r), 401);
	http_resp_free(&r);

	login_new_user(other, sizeof(other));
	assert_int_equal(call(other, "POST", "/api/chat", "{\"message\":\"hello there\"}", &r),
	                 400);
	assert_string_equal(js(r.json, "detail"), "No PDF selected");
	http_resp_free(&r);
	assert_int_equal(call(other, "GET", "/api/chat/history", NULL, &r), 400);
	assert_string_equal(js(r.json, "detail"), "No PDF selected");
	http_resp_free(&r);
}

/* ---- v1 -------------------------------------------------------------------------------------- */

static void
create_chat(const char *auth, char *chat, size_t n)
{
	char      path[160];
	http_resp r;

	snprintf(path, sizeof(path), "/api/v1/documents/%s/chats", doc_a);
	assert_int_equal(call(auth, "POST", path, NULL, &r), 201);
	snprintf(chat, n, "%s", js(r.json, "chat_id"));
	http_resp_free(&r);
	assert_true(cm_uuid_valid(chat));
}

static ws_client *
ws_open(const char *auth)
{
	char path[4400];

	snprintf(path, sizeof(path), "/api/v1/ws?access_token=%s",
	         auth + strlen("Authorization: Bearer "));
	return ws_connect(path, NULL);
}

/* Sends {"subscribe":"chat:<id>"} and returns the first frame answering it. */
static json_t *
ws_subscribe(ws_client *ws, const char *chat)
{
	char frame[4096];

	snprintf(frame, sizeof(frame), "{\"subscribe\":\"chat:%s\"}", chat);
	assert_int_equal(ws_send(ws, frame), 0);
	assert_int_equal(ws_recv(ws, frame, sizeof(frame), 10000), 0);
	return json_loads(frame, 0, NULL);
}

/* A POST on its own thread: when its answer was complete (cm_mono_ms). */
typedef struct post_job {
	const char *auth;
	char        path[160];
	char       *body;
	http_resp   r;
	int         rc;
	int64_t     done_ms;
} post_job;

static void *
post_run(void *arg)
{
	post_job   *j = arg;
	const char *h[] = {j->auth, "Content-Type: application/json", NULL};

	j->rc = http_do("POST", j->path, h, j->body, strlen(j->body), &j->r);
	j->done_ms = cm_mono_ms();
	return NULL;
}

/* Messages of a chat as auth: the HTTP status; the list in *items (a new reference). */
static long
list_messages(const char *auth, const char *chat, json_t **items)
{
	char      path[160];
	http_resp r;
	long      s;

	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	s = call(auth, "GET", path, NULL, &r);
	*items = json_incref(json_object_get(r.json, "items"));
	http_resp_free(&r);
	return s;
}

/* A question over the WebSocket: deltas arrive while the POST is still open, they add up to the
 * answer, chat.done follows; the citations are the quoted pages; the stored messages. */
static void
test_v1_streamed_answer(void **state)
{
	char       chat[64], frame[8192], q[256], done_id[64] = "";
	ws_client *ws;
	json_t    *v, *items, *cites;
	post_job   j;
	pthread_t  th;
	cm_buf     deltas;
	int64_t    first_delta = -1, until;
	bool       done = false;
	int        pages[MAX_QUOTES], nq;

	(void)state;
	question_from_page(9, q, sizeof(q));
	create_chat(user_a, chat, sizeof(chat));
	assert_non_null(ws = ws_open(user_a));
	v = ws_subscribe(ws, chat);
	assert_string_equal(js(v, "type"), "subscribed");
	json_decref(v);
	/* About 20 tokens a second: an answer of 40+ words streams for 2 s or more. */
	fake_set("{\"ttft_ms\":200,\"tokens_per_s\":20}");

	memset(&j, 0, sizeof(j));
	j.auth = user_a;
	snprintf(j.path, sizeof(j.path), "/api/v1/chats/%s/messages", chat);
	j.body = body_of("content", q);
	assert_int_equal(pthread_create(&th, NULL, post_run, &j), 0);
	cm_buf_init(&deltas, 1u << 20);
	until = cm_mono_ms() + 60000;
	while (!done && cm_mono_ms() < until && ws_recv(ws, frame, sizeof(frame), 60000) == 0) {
		v = json_loads(frame, 0, NULL);
		assert_non_null(v);
		assert_string_equal(js(v, "chat_id"), chat);
		if (strcmp(js(v, "type"), "chat.delta") == 0) {
			if (first_delta < 0)
				first_delta = cm_mono_ms();
			assert_int_equal(cm_buf_appends(&deltas, js(v, "delta")), CM_OK);
		} else {
			assert_string_equal(js(v, "type"), "chat.done");
			assert_string_equal(js(v, "status"), "complete");
			snprintf(done_id, sizeof(done_id), "%s", js(v, "message_id"));
			done = true;
		}
		json_decref(v);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	ws_close(ws);
	free(j.body);
	assert_true(done);
	assert_int_equal(j.rc, 0);
	assert_int_equal(j.r.status, 200);
	assert_true(first_delta > 0);
	assert_true(first_delta < j.done_ms); /* streamed, not sent after the answer */

	assert_string_equal(js(j.r.json, "role"), "assistant");
	assert_string_equal(js(j.r.json, "status"), "complete");
	assert_string_equal(js(j.r.json, "id"), done_id);
	assert_non_null(deltas.data);
	assert_string_equal(deltas.data, js(j.r.json, "content"));
	cm_buf_fini(&deltas);
	nq = check_quotes(js(j.r.json, "content"), pages);
	assert_true(nq >= 1);
	cites = json_object_get(j.r.json, "citations");
	assert_true(json_array_size(cites) >= 1);
	/* Each citation is a quoted page, and each quoted page is cited. */
	for (size_t i = 0; i < json_array_size(cites); i++) {
		int  p = (int)json_integer_value(json_object_get(json_array_get(cites, i), "page"));
		bool quoted = false;
		for (int k = 0; k < nq; k++)
			quoted = quoted || pages[k] == p;
		assert_true(quoted);
	}
	for (int k = 0; k < nq; k++) {
		bool cited = false;
		for (size_t i = 0; i < json_array_size(cites); i++)
			cited = cited || json_integer_value(json_object_get(
			                     json_array_get(cites, i), "page")) == pages[k];
		assert_true(cited);
	}

	assert_int_equal(list_messages(user_a, chat, &items), 200);
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(js(json_array_get(items, 0), "role"), "user");
	assert_string_equal(js(json_array_get(items, 0), "content"), q);
	assert_string_equal(js(json_array_get(items, 1), "role"), "assistant");
	assert_string_equal(js(json_array_get(items, 1), "id"), js(j.r.json, "id"));
	assert_string_equal(js(json_array_get(items, 1), "content"), js(j.r.json, "content"));
	json_decref(items);
	http_resp_free(&j.r);
}

/* Another user's chat is not found (messages, sending, subscribing); bad content is 400. */
static void
test_v1_refusals(void **state)
{
	char       chat[64], path[160];
	ws_client *ws;
	json_t    *v, *items;
	http_resp  r;
	cm_buf     huge;

	(void)state;
	create_chat(user_a, chat, sizeof(chat));
	assert_int_equal(list_messages(user_b, chat, &items), 404);
	json_decref(items);
	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	assert_int_equal(call(user_b, "POST", path, "{\"content\":\"hello there\"}", &r), 404);
	http_resp_free(&r);
	assert_non_null(ws = ws_open(user_b));
	v = ws_subscribe(ws, chat);
	assert_string_equal(js(v, "type"), "error");
	assert_string_equal(js(v, "code"), "NOT_FOUND");
	json_decref(v);
	ws_close(ws);
	/* Someone else's document: no chat about it. */
	snprintf(path, sizeof(path), "/api/v1/documents/%s/chats", doc_a);
	assert_int_equal(call(user_b, "POST", path, NULL, &r), 404);
	http_resp_free(&r);

	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	assert_int_equal(call(user_a, "POST", path, "{\"content\":\"\"}", &r), 400);
	http_resp_free(&r);
	/* Over svc-chat's CHAT_MAX_MESSAGE (8192 bytes). */
	cm_buf_init(&huge, 1u << 20);
	assert_int_equal(cm_buf_appends(&huge, "{\"content\":\""), CM_OK);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cm_buf_appends(&huge, "question "), CM_OK);
	assert_int_equal(cm_buf_appends(&huge, "\"}"), CM_OK);
	assert_int_equal(call(user_a, "POST", path, huge.data, &r), 400);
	http_resp_free(&r);
	cm_buf_fini(&huge);
	/* Neither refusal was stored. */
	assert_int_equal(list_messages(user_a, chat, &items), 200);
	assert_int_equal(json_array_size(items), 0);
	json_decref(items);
}

/* Words the document does not hold: the model says so and nothing is cited. */
static void
test_not_in_document(void **state)
{
	char      chat[64], path[160];
	http_resp r;
	long      before = fake_stat("chat", "not_found");

	(void)state;
	create_chat(user_a, chat, sizeof(chat));
	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	assert_int_equal(call(user_a, "POST", path,
	                      "{\"content\":\"Quokkas, wombats, narwhals, xylophones?\"}", &r),
	                 200);
	assert_string_equal(js(r.json, "content"), NOT_FOUND);
	assert_int_equal(json_array_size(json_object_get(r.json, "citations")), 0);
	http_resp_free(&r);
	assert_int_equal(fake_stat("chat", "not_found"), before + 1);
}

/* ---- faults ---------------------------------------------------------------------------------- */

/* The model's stream cut half way: v1 answers 503 and stores the message as incomplete. */
static void
test_v1_stream_cut(void **state)
{
	char      chat[64], path[160], q[256];
	char     *req;
	http_resp r;
	json_t   *items, *last;
	long      cuts = fake_stat("faults", "cut_stream");

	(void)state;
	question_from_page(12, q, sizeof(q));
	create_chat(user_a, chat, sizeof(chat));
	fake_set("{\"cut_stream_next\":1}");
	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	req = body_of("content", q);
	assert_int_equal(call(user_a, "POST", path, req, &r), 503);
	free(req);
	http_resp_free(&r);
	assert_int_equal(fake_stat("faults", "cut_stream"), cuts + 1);

	assert_int_equal(list_messages(user_a, chat, &items), 200);
	assert_int_equal(json_array_size(items), 2);
	last = json_array_get(items, 1);
	assert_string_equal(js(last, "role"), "assistant");
	assert_string_equal(js(last, "status"), "incomplete");
	assert_true(strlen(js(last, "error")) > 0);
	json_decref(items);
}

/* The same on the legacy route: 200, the partial answer and a plain explanation. */
static void
test_legacy_stream_cut(void **state)
{
	char      q[256];
	char     *req;
	http_resp r;
	long      cuts = fake_stat("faults", "cut_stream");

	(void)state;
	question_from_page(12, q, sizeof(q));
	fake_set("{\"cut_stream_next\":1}");
	req = body_of("message", q);
	assert_int_equal(call(user_a, "POST", "/api/chat", req, &r), 200);
	free(req);
	assert_non_null(strstr(js(r.json, "response"), "This answer is incomplete"));
	http_resp_free(&r);
	assert_int_equal(fake_stat("faults", "cut_stream"), cuts + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_legacy_chat_flow),
	    cmocka_unit_test(test_legacy_chat_refusals),
	    cmocka_unit_test_teardown(test_v1_streamed_answer, fake_restore),
	    cmocka_unit_test(test_v1_refusals),
	    cmocka_unit_test(test_not_in_document),
	    cmocka_unit_test_teardown(test_v1_stream_cut, fake_restore),
	    cmocka_unit_test_teardown(test_legacy_stream_cut, fake_restore),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	return cmocka_run_group_tests(tests, setup, teardown);
}
