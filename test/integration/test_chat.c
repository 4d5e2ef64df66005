/*
 * test_chat.c - svc-chat on the pgredis fixture's PostgreSQL and Redis, with a real svc-pdf and
 * two svc-chat instances run in this process by the service skeleton (one answering with
 * test/fakellm/fakellm.py, started here on 127.0.0.1:28521, one with the offline provider), all
 * called over RPC as the edge calls them, and a subscriber on the chat events.
 *
 * Shown: answers cite pages whose text holds the quoted passage; a question the document does
 * not answer gets "not in the document"; deltas reach a subscriber before chat.Send returns and
 * add up to the stored answer; a stream cut half way, and a model failing before its stream,
 * store an incomplete message (v1: an error status; legacy: a plain explanation, counted); the
 * answer is stored though the caller's deadline passed; another user's chat is NOT_FOUND; caps
 * (message size, turns per user, messages kept per chat); the legacy history on the selected
 * PDF; the offline provider. svc-chat uses a schema of its own per run.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "fakellm_helper.h"
#include "worker_helper.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/pubsub.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "cm/util.h"
#include "../../svc-chat/cascade.h"
#include "../../svc-chat/offline.h"
#include "../../svc-chat/prompt.h"
#include "../../svc-chat/server.h"
#include "../../svc-chat/store.h"
#include "../../svc-pdf/server.h"
#include "../../svc-pdf/testpdf.h"
#include "proto/chat.pb-c.h"
#include "proto/pdf.pb-c.h"

#define FAKE_PORT 28521
#define FAKE_URL "http://127.0.0.1:28521"
#define PDF_URL "tcp://127.0.0.1:27181"
#define CHAT_URL "tcp://127.0.0.1:27182"
#define CHAT_EVENTS "tcp://127.0.0.1:27282"
#define OFF_URL "tcp://127.0.0.1:27183"

static pid_t          fake_pid = -1;
static cm_service    *pdf_svc, *chat_svc, *off_svc;
static chat_service  *chat_app;
static cm_service_def chat_def, off_def;
static cm_rpc_client *pdf_c, *chat_c, *off_c;
static char           schema[40], datadir[64], user[48], other[48], doc_id[40], nonce[17];
static int            doc_pages;

static const char *const prose[] = {
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules. The "
    "process takes place inside the chloroplasts of plant cells and some algae. Chlorophyll "
    "absorbs mostly blue and red light and reflects green light back to the eye.",
    "The Calvin cycle fixes carbon dioxide into sugars using the energy carried by ATP and NADPH "
    "molecules. Rubisco is the enzyme that captures carbon dioxide during the Calvin cycle in the "
    "stroma. Cellular respiration releases the energy stored in glucose inside the mitochondria.",
    "Glycolysis splits one glucose molecule into two pyruvate molecules in the cytoplasm of the "
    "cell. Mitochondria produce most of the ATP that a eukaryotic cell needs for growth and "
    "repair. Enzymes lower the activation energy of chemical reactions without being consumed.",
    "Temperature and acidity change the shape of enzymes and therefore the speed of reactions. "
    "Diffusion moves molecules from regions of high concentration to regions of low "
    "concentration. Osmosis is the diffusion of water across a membrane that lets water pass.",
};

/* ---- the fake LLM -------------------------------------------------------------------------- */

/* One request to the fake's control API; its body in out (may be NULL). */
static bool
fake(const char *method, const char *path, const char *body, cm_buf *out)
{
	return test_fake_call(FAKE_URL, method, path, body, out);
}

static void
control(const char *body)
{
	assert_true(fake("POST", "/_control", body, NULL));
}

/* The fake's chat counter `name` ("answers" or "not_found"), read from /_stats. */
static long
fake_chat(const char *name)
{
	cm_buf      b;
	char        key[32];
	const char *p;
	long        v = -1;

	cm_buf_init(&b, 1u << 20);
	assert_true(fake("GET", "/_stats", NULL, &b));
	snprintf(key, sizeof(key), "\"%s\": ", name);
	if ((p = strstr(b.data, "\"chat\": {")) != NULL && (p = strstr(p, key)) != NULL)
		v = strtol(p + strlen(key), NULL, 10);
	cm_buf_fini(&b);
	return v;
}

/* ---- RPC ------------------------------------------------------------------------------------ */

typedef struct reply {
	cm_err            err;
	char              message[CM_MAX_ERRMSG];
	int32_t           retry_after_s;
	ProtobufCMessage *msg;
} reply;

static reply
rpc(cm_rpc_client *c, const char *method, const char *subject, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, int64_t timeout_ms)
{
	cm_rpc_call_opts o;
	cm_rpc_result    res;
	reply            r;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	o.method = method;
	o.subject = subject;
	o.request_id = "test-chat";
	o.deadline_ms = cm_now_ms() + timeout_ms;
	r.err = cm_rpc_call(c, &o, req, d, &r.msg, &res);
	snprintf(r.message, sizeof(r.message), "%s", res.message);
	r.retry_after_s = res.retry_after_s;
	cm_rpc_result_fini(&res);
	return r;
}

static void
reply_free(reply *r)
{
	if (r->msg != NULL)
		protobuf_c_message_free_unpacked(r->msg, NULL);
	r->msg = NULL;
}

static void
wait_connected(cm_rpc_client *c)
{
	for (int64_t until = cm_mono_ms() + 5000;
	     cm_mono_ms() < until && cm_rpc_client_healthy(c) < 1;)
		usleep(10000);
	assert_true(cm_rpc_client_healthy(c) >= 1);
}

/* A new chat of subject's about doc (on the online instance unless c says otherwise). */
static void
new_chat(cm_rpc_client *c, const char *subject, const char *doc, char id[40])
{
	Chat__CreateRequest rq = CHAT__CREATE_REQUEST__INIT;
	reply               r;

	rq.document_id = (char *)doc;
	r = rpc(c, "chat.Create", subject, &rq.base, &chat__chat__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	snprintf(id, 40, "%s", ((Chat__Chat *)r.msg)->id);
	assert_string_equal(((Chat__Chat *)r.msg)->document_id, doc);
	reply_free(&r);
}

static reply
send_msg(cm_rpc_client *c, const char *subject, const char *chat, const char *text, bool legacy,
         int64_t timeout_ms)
{
	Chat__SendRequest rq = CHAT__SEND_REQUEST__INIT;

	rq.chat_id = (char *)(chat != NULL ? chat : "");
	rq.use_selected = chat == NULL;
	rq.legacy = legacy;
	rq.content = (char *)text;
	return rpc(c, "chat.Send", subject, &rq.base, &chat__message__descriptor, timeout_ms);
}

static reply
list(const char *subject, const char *chat)
{
	Chat__ListRequest rq = CHAT__LIST_REQUEST__INIT;

	rq.chat_id = (char *)chat;
	rq.limit = 100;
	return rpc(chat_c, "chat.ListMessages", subject, &rq.base, &chat__message_list__descriptor,
	           5000);
}

/* ---- document checks ------------------------------------------------------------------------ */

/* Text with every run of white space made one space. */
static void
squash(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	bool   sp = false;

	for (; *in != '\0' && n + 2 < outlen; in++) {
		if (*in == ' ' || *in == '\n' || *in == '\t' || *in == '\r') {
			sp = n > 0;
			continue;
		}
		if (sp)
			out[n++] = ' ';
		sp = false;
		out[n++] = *in;
	}
	out[n] = '\0';
}

static void
page_text(int page, char *out, size_t outlen)
{
	Pdf__GetPageRequest rq = PDF__GET_PAGE_REQUEST__INIT;
	reply               r;

	rq.id = doc_id;
	rq.page = page;
	r = rpc(pdf_c, "pdf.GetPage", user, &rq.base, &pdf__page__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	squash(((Pdf__Page *)r.msg)->text, out, outlen);
	reply_free(&r);
}

/* Every `"quote" [p. N]` of an answer: page N's text holds the quote; returns how many, and
 * sets the bit of each page cited that way. */
static int
check_quotes(const char *answer, unsigned *pages_bits)
{
	const char *p = answer;
	int         n = 0;

	*pages_bits = 0;
	while ((p = strchr(p, '"')) != NULL) {
		const char *q = strchr(p + 1, '"');
		char        quote[1024], text[4096], sq[1024];
		int         page;
		if (q == NULL)
			break;
		if (sscanf(q + 1, " [p. %d]", &page) != 1) {
			p = q + 1;
			continue;
		}
		snprintf(quote, sizeof(quote), "%.*s", (int)(q - p - 1), p + 1);
		squash(quote, sq, sizeof(sq));
		if (strlen(sq) > 4 && strcmp(sq + strlen(sq) - 4, " ...") == 0)
			sq[strlen(sq) - 4] = '\0'; /* clipped quote */
		assert_true(page >= 1 && page <= doc_pages);
		page_text(page, text, sizeof(text));
		if (strstr(text, sq) == NULL)
			fail_msg("page %d does not contain the quote \"%s\"", page, sq);
		*pages_bits |= 1u << page;
		n++;
		p = q + 1;
	}
	return n;
}

static unsigned
citation_bits(const Chat__Message *m)
{
	unsigned bits = 0;

	for (size_t i = 0; i < m->n_citations; i++)
		bits |= 1u << m->citations[i]->page;
	return bits;
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static void
upload_doc(const char *subject, char id_out[40])
{
	pdf_testpdf        o;
	cm_buf             b;
	char               text[4][1024];
	const char        *pages[4];
	Pdf__UploadRequest rq = PDF__UPLOAD_REQUEST__INIT;
	reply              r;

	for (int i = 0; i < 4; i++) {
		snprintf(text[i], sizeof(text[i]), "%s Run %s.", prose[i], nonce);
		pages[i] = text[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = 4;
	o.pages = pages;
	o.title = "Biology notes";
	cm_buf_init(&b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, &b), CM_OK);
	rq.filename = (char *)"notes.pdf";
	rq.content.data = (uint8_t *)b.data;
	rq.content.len = b.len;
	r = rpc(pdf_c, "pdf.Upload", subject, &rq.base, &pdf__upload_response__descriptor, 30000);
	assert_int_equal(r.err, CM_OK);
	snprintf(id_out, 40, "%s", ((Pdf__UploadResponse *)r.msg)->document->id);
	doc_pages = ((Pdf__UploadResponse *)r.msg)->document->pages;
	reply_free(&r);
	cm_buf_fini(&b);
}

static void
common_env(void)
{
	const char *port = getenv("CM_TEST_REDIS_PORT");

	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", getenv("CM_TEST_PG"), 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", port != NULL ? port : "26379", 1);
}

static int
setup(void **state)
{
	char r[8];

	(void)state;
	if (getenv("CM_TEST_PG") == NULL)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((fake_pid = test_fake_start(FAKE_PORT, NULL)) < 0)
		return -1;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(schema, sizeof(schema), "chat_it_%.8s", nonce);
	snprintf(user, sizeof(user), "chat-%s", nonce);
	snprintf(other, sizeof(other), "other-%s", nonce);
	snprintf(datadir, sizeof(datadir), "/tmp/chat-itest-XXXXXX");
	if (mkdtemp(datadir) == NULL)
		return -1;

	/* Every variable is in the environment before the first service starts: its threads read
	 * the environment (libpq reads PG* when it connects), and setenv adding a name may move the
	 * environment under them (a crash in getenv, seen under ASan). Later setenv calls only
	 * replace values of names already there, which never moves it. */
	common_env();
	setenv("PDF_RPC_URL", PDF_URL, 1);
	setenv("PDF_ADMIN_ADDR", "127.0.0.1:29181", 1);
	setenv("PDF_WORKERS", "4", 1);
	setenv("PDF_DATA_DIR", datadir, 1);
	/* svc-chat with the fake model: short generation bound, one retry, quick backoff. */
	setenv("CHAT_RPC_URL", CHAT_URL, 1);
	setenv("CHAT_ADMIN_ADDR", "127.0.0.1:29182", 1);
	setenv("CHAT_EVENTS_URL", CHAT_EVENTS, 1);
	setenv("CHAT_WORKERS", "6", 1);
	setenv("CHAT_PDF_URLS", PDF_URL, 1);
	setenv("CHAT_USER_TURNS", "1", 1);
	setenv("CHAT_MAX_MESSAGES", "10", 1);
	setenv("CHAT_TURN_TIMEOUT_MS", "15000", 1);
	setenv("LLM_BASE_URL", FAKE_URL "/v1", 1);
	setenv("LLM_MODEL", "fake", 1);
	setenv("LLM_MAX_ATTEMPTS", "2", 1);
	setenv("LLM_BACKOFF_BASE_MS", "10", 1);
	setenv("LLM_BACKOFF_MAX_MS", "50", 1);
	setenv("LLM_MAX_CONCURRENCY", "16", 1);
	if (cm_service_start(&pdf_service_def, &pdf_svc, NULL) != CM_OK)
		return -1;
	chat_def = chat_service_def;
	chat_def.schema = schema;
	if (cm_service_start(&chat_def, &chat_svc, (void **)&chat_app) != CM_OK ||
	    chat_app->llm == NULL)
		return -1;
	/* The same service without a model, on the same schema. */
	setenv("CHAT_RPC_URL", OFF_URL, 1);
	setenv("CHAT_ADMIN_ADDR", "127.0.0.1:29183", 1);
	setenv("CHAT_EVENTS_URL", "", 1);
	setenv("LLM_BASE_URL", "", 1); /* no model; unsetenv would move the environment */
	off_def = chat_def;
	if (cm_service_start(&off_def, &off_svc, NULL) != CM_OK)
		return -1;

	if (cm_rpc_client_open(&pdf_c, "pdf", PDF_URL, NULL) != CM_OK ||
	    cm_rpc_client_open(&chat_c, "chat", CHAT_URL, NULL) != CM_OK ||
	    cm_rpc_client_open(&off_c, "chat", OFF_URL, NULL) != CM_OK)
		return -1;
	wait_connected(pdf_c);
	wait_connected(chat_c);
	wait_connected(off_c);
	upload_doc(user, doc_id);
	return 0;
}

static int
teardown(void **state)
{
	cm_migration migs[8];
	size_t       n = chat_migrations_all(migs, 8);
	char         cmd[128];

	(void)state;
	cm_rpc_client_close(off_c);
	cm_rpc_client_close(chat_c);
	cm_rpc_client_close(pdf_c);
	cm_service_stop(off_svc);
	cm_service_stop(chat_svc);
	cm_service_stop(pdf_svc);
	test_schema_drop(schema, migs, n);
	(void)test_fake_stop(fake_pid);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Each test starts from the fake's start-up configuration and zero counters. */
static int
reset(void **state)
{
	(void)state;
	return fake("POST", "/_reset", "{\"config\":true}", NULL) ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

/* The answer quotes the document and cites the pages holding each quote; the citations are
 * exactly those pages; the stored messages say the same. */
static void
test_answer_cites_pages(void **state)
{
	char               chat[40];
	unsigned           quoted;
	reply              r, l;
	Chat__Message     *m;
	Chat__MessageList *ml;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	m = (Chat__Message *)r.msg;
	assert_string_equal(m->status, "complete");
	assert_string_equal(m->role, "assistant");
	assert_non_null(strstr(m->content, "Calvin cycle"));
	assert_true(check_quotes(m->content, &quoted) >= 1);
	assert_true(quoted & (1u << 2)); /* the Calvin cycle is on page 2 */
	assert_int_equal(citation_bits(m), quoted);
	l = list(user, chat);
	assert_int_equal(l.err, CM_OK);
	ml = (Chat__MessageList *)l.msg;
	assert_int_equal(ml->n_messages, 2);
	assert_string_equal(ml->messages[0]->role, "user");
	assert_string_equal(ml->messages[0]->content, "What does the Calvin cycle fix?");
	assert_string_equal(ml->messages[1]->id, m->id);
	assert_string_equal(ml->messages[1]->content, m->content);
	assert_int_equal(citation_bits(ml->messages[1]), quoted);
	assert_string_equal(ml->next_cursor, "");
	assert_int_equal(fake_chat("answers"), 1);
	reply_free(&l);
	reply_free(&r);
	/* A question that shares only some words ("regrow"? no: "enzymes ... activation") still
	 * finds its page through the search's fallback. */
	r = send_msg(chat_c, user, chat, "How do enzymes change activation energy?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	m = (Chat__Message *)r.msg;
	assert_true(check_quotes(m->content, &quoted) >= 1);
	assert_true(quoted & (1u << 3));
	assert_int_equal(citation_bits(m), quoted);
	reply_free(&r);
}

/* The document does not say: the assistant says so, cites nothing, invents nothing. */
static void
test_not_in_document(void **state)
{
	char           chat[40];
	reply          r;
	Chat__Message *m;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	r = send_msg(chat_c, user, chat, "Who won the football world cup?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	m = (Chat__Message *)r.msg;
	assert_string_equal(m->content, CHAT_NOT_FOUND_TEXT);
	assert_int_equal(m->n_citations, 0);
	assert_string_equal(m->status, "complete");
	assert_int_equal(fake_chat("not_found"), 1);
	reply_free(&r);
}

/* ---- events -------------------------------------------------------------------------------- */

typedef struct events {
	pthread_mutex_t mu;
	char            chat[40];
	char            msg_id[40];
	int             deltas;
	int64_t         first_delta_ms; /* cm_mono_ms */
	cm_buf          text;
	char            done_status[16];
	int64_t         done_ms;
	bool            probe;
} events;

static void
on_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	events          *e = arg;
	Chat__ChatEvent *ev = chat__chat_event__unpack(NULL, len, payload);

	if (ev == NULL)
		return;
	pthread_mutex_lock(&e->mu);
	if (strcmp(ev->chat_id, "probe") == 0) {
		e->probe = true;
	} else if (strcmp(topic + 5, e->chat) == 0 && strcmp(type, "chat.delta") == 0) {
		if (e->deltas++ == 0)
			e->first_delta_ms = cm_mono_ms();
		snprintf(e->msg_id, sizeof(e->msg_id), "%s", ev->message_id);
		if (cm_buf_appends(&e->text, ev->delta) != CM_OK)
			e->deltas = -1000;
	} else if (strcmp(topic + 5, e->chat) == 0 && strcmp(type, "chat.done") == 0) {
		snprintf(e->done_status, sizeof(e->done_status), "%s", ev->status);
		e->done_ms = cm_mono_ms();
	}
	pthread_mutex_unlock(&e->mu);
	chat__chat_event__free_unpacked(ev, NULL);
}

/* Subscribes to chat.<chat> and waits until the connection carries events (a probe). */
static cm_sub *
subscribe(events *e, const char *chat)
{
	cm_sub *s = NULL;
	char    topic[64];

	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
	cm_buf_init(&e->text, 1u << 20);
	snprintf(e->chat, sizeof(e->chat), "%s", chat);
	snprintf(topic, sizeof(topic), "chat.%s", chat);
	assert_int_equal(cm_sub_open(&s, CHAT_EVENTS, on_event, e), CM_OK);
	assert_int_equal(cm_sub_subscribe(s, topic), CM_OK);
	assert_int_equal(cm_sub_subscribe(s, "chat.probe"), CM_OK);
	for (int64_t until = cm_mono_ms() + 5000; cm_mono_ms() < until;) {
		bool seen;
		chat_publish(chat_app, "chat.delta", "probe", "", "", "x", 1, NULL);
		pthread_mutex_lock(&e->mu);
		seen = e->probe;
		pthread_mutex_unlock(&e->mu);
		if (seen)
			return s;
		usleep(20000);
	}
	fail_msg("the subscriber never connected");
	return NULL;
}

typedef struct sender {
	const char *subject, *chat, *text;
	bool        legacy;
	int64_t     timeout_ms;
	reply       r;
	int64_t     returned_ms;
} sender;

static void *
send_thread(void *arg)
{
	sender *s = arg;

	s->r = send_msg(chat_c, s->subject, s->chat, s->text, s->legacy, s->timeout_ms);
	s->returned_ms = cm_mono_ms();
	return NULL;
}

/* The deltas reach a subscriber while chat.Send is still open, carry the message's id, and add
 * up to the stored answer; chat.done follows. */
static void
test_deltas_before_send_returns(void **state)
{
	char           chat[40];
	events         e;
	cm_sub        *sub;
	sender         s = {user, NULL, "What does the Calvin cycle fix?", false, 20000, {0}, 0};
	pthread_t      th;
	Chat__Message *m;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	s.chat = chat;
	sub = subscribe(&e, chat);
	control("{\"ttft_ms\":100,\"tokens_per_s\":40}"); /* the answer takes about a second */
	assert_int_equal(pthread_create(&th, NULL, send_thread, &s), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.r.err, CM_OK);
	m = (Chat__Message *)s.r.msg;
	for (int64_t until = cm_mono_ms() + 3000; cm_mono_ms() < until;) {
		pthread_mutex_lock(&e.mu);
		bool done = e.done_status[0] != '\0';
		pthread_mutex_unlock(&e.mu);
		if (done)
			break;
		usleep(10000);
	}
	cm_sub_close(sub);
	fprintf(stderr, "MEASURE %d deltas; first delta %lld ms before chat.Send returned\n",
	        e.deltas, (long long)(s.returned_ms - e.first_delta_ms));
	assert_true(e.deltas >= 3);
	assert_true(e.first_delta_ms < s.returned_ms - 300); /* well before: generation is slow */
	assert_string_equal(e.msg_id, m->id);
	assert_string_equal(e.text.data, m->content);
	assert_string_equal(e.done_status, "complete");
	cm_buf_fini(&e.text);
	pthread_mutex_destroy(&e.mu);
	reply_free(&s.r);
}

/* ---- failures ------------------------------------------------------------------------------ */

static Chat__Message *
last_message(const char *chat, reply *l)
{
	Chat__MessageList *ml;

	*l = list(user, chat);
	assert_int_equal(l->err, CM_OK);
	ml = (Chat__MessageList *)l->msg;
	assert_true(ml->n_messages >= 1);
	return ml->messages[ml->n_messages - 1];
}

static uint64_t
metric(const char *name)
{
	cm_buf      b;
	const char *p;
	size_t      n = strlen(name);
	uint64_t    v = 0;

	cm_buf_init(&b, 1 << 20);
	assert_int_equal(cm_metrics_render(chat_app->metrics, &b), CM_OK);
	for (p = b.data; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			v = strtoull(p + n + 1, NULL, 10);
			break;
		}
	}
	cm_buf_fini(&b);
	return v;
}

/* The stream is cut half way: what was written is stored as incomplete with the reason; v1 gets
 * UNAVAILABLE naming it, the legacy caller a 200-style Message explaining it (counted). */
static void
test_stream_cut_midway(void **state)
{
	char           chat[40], full[4096];
	reply          r, l;
	Chat__Message *m;
	uint64_t       legacy0 = metric("chat_legacy_failures_total");

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	snprintf(full, sizeof(full), "%s", ((Chat__Message *)r.msg)->content);
	reply_free(&r);
	control("{\"cut_stream_next\":1}");
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", false, 20000);
	assert_int_equal(r.err, CM_EUNAVAIL);
	assert_non_null(strstr(r.message, "the language model's answer broke off"));
	m = last_message(chat, &l);
	assert_string_equal(m->role, "assistant");
	assert_string_equal(m->status, "incomplete");
	assert_string_equal(m->error, "the language model's answer broke off");
	/* what was streamed before the cut: a strict, non-empty start of the whole answer */
	assert_true(strlen(m->content) > 0 && strlen(m->content) < strlen(full));
	assert_int_equal(strncmp(m->content, full, strlen(m->content)), 0);
	assert_non_null(strstr(r.message, m->id));
	reply_free(&l);

	control("{\"cut_stream_next\":1}");
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", true, 20000);
	assert_int_equal(r.err, CM_OK);
	m = (Chat__Message *)r.msg;
	assert_string_equal(m->status, "incomplete");
	assert_non_null(strstr(m->content,
	                       "(This answer is incomplete: the language model's answer "
	                       "broke off. Please ask again.)"));
	assert_int_equal(metric("chat_legacy_failures_total"), legacy0 + 1);
	reply_free(&r);
}

/* The model fails before its stream (every attempt 503): nothing was written; stored as
 * incomplete all the same. */
static void
test_model_fails_before_stream(void **state)
{
	char           chat[40];
	reply          r, l;
	Chat__Message *m;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	control("{\"fail_next\":10}");
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", false, 20000);
	assert_int_equal(r.err, CM_EUNAVAIL);
	assert_non_null(strstr(r.message, "the language model is unavailable"));
	m = last_message(chat, &l);
	assert_string_equal(m->status, "incomplete");
	assert_string_equal(m->content, "");
	reply_free(&l);
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", true, 20000);
	assert_int_equal(r.err, CM_OK);
	assert_string_equal(((Chat__Message *)r.msg)->content,
	                    "Sorry, I could not answer your question: the language model is "
	                    "unavailable. Please try again in a moment.");
	reply_free(&r);
}

/* The caller gives up (its deadline passes while the model is still slow to start): the answer
 * is generated and stored all the same. */
static void
test_caller_gives_up(void **state)
{
	char           chat[40];
	reply          r, l;
	Chat__Message *m = NULL;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	control("{\"ttft_ms\":800}");
	r = send_msg(chat_c, user, chat, "What does the Calvin cycle fix?", false, 300);
	assert_int_equal(r.err, CM_ETIMEDOUT);
	for (int64_t until = cm_mono_ms() + 5000; cm_mono_ms() < until; usleep(50000)) {
		m = last_message(chat, &l);
		if (strcmp(m->role, "assistant") == 0)
			break;
		reply_free(&l);
		m = NULL;
	}
	assert_non_null(m);
	assert_string_equal(m->status, "complete");
	assert_non_null(strstr(m->content, "[p. 2]"));
	reply_free(&l);
}

/* ---- ownership and caps ---------------------------------------------------------------------- */

static void
test_other_users_chat(void **state)
{
	char                chat[40];
	Chat__ChatRef       g = CHAT__CHAT_REF__INIT;
	Chat__CreateRequest c = CHAT__CREATE_REQUEST__INIT;
	reply               r;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	g.id = chat;
	r = rpc(chat_c, "chat.Get", other, &g.base, &chat__chat__descriptor, 5000);
	assert_int_equal(r.err, CM_ENOTFOUND);
	r = list(other, chat);
	assert_int_equal(r.err, CM_ENOTFOUND);
	r = send_msg(chat_c, other, chat, "What does the Calvin cycle fix?", false, 5000);
	assert_int_equal(r.err, CM_ENOTFOUND);
	/* nor may another user chat about this user's document */
	c.document_id = doc_id;
	r = rpc(chat_c, "chat.Create", other, &c.base, &chat__chat__descriptor, 5000);
	assert_int_equal(r.err, CM_ENOTFOUND);
	/* the owner still sees an untouched chat */
	r = rpc(chat_c, "chat.Get", user, &g.base, &chat__chat__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	assert_false(((Chat__Chat *)r.msg)->legacy);
	reply_free(&r);
	r = list(user, chat);
	assert_int_equal(((Chat__MessageList *)r.msg)->n_messages, 0);
	reply_free(&r);
}

/* ---- a deleted document (svc-chat/cascade.h) --------------------------------------------------
 */

/* Applying a deletion takes the owner's chats of the document (v1 and legacy), leaves another
 * owner's, and from then on refuses any new chat of it: what closes the race with a create that
 * read the document from svc-pdf just before its deletion. Applying it again changes nothing. */
static void
test_cascade_deletes_and_refuses(void **state)
{
	cm_pg   *pg = NULL;
	chat_row v1, legacy, others, row;
	char     doc[37];

	(void)state;
	cm_uuid_v4(doc);
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_int_equal(chat_store_create(pg, user, doc, 3, &v1), CM_OK);
	assert_int_equal(chat_store_legacy(pg, user, doc, 3, true, &legacy), CM_OK);
	assert_int_equal(chat_store_create(pg, other, doc, 3, &others), CM_OK);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(cm_pg_begin(pg), CM_OK);
		assert_int_equal(chat_cascade_apply(chat_app, pg, 1, doc, user), CM_OK);
		assert_int_equal(cm_pg_commit(pg), CM_OK);
	}
	assert_int_equal(chat_store_get(pg, user, v1.id, &row), CM_ENOTFOUND);
	assert_int_equal(chat_store_get(pg, user, legacy.id, &row), CM_ENOTFOUND);
	assert_int_equal(chat_store_get(pg, other, others.id, &row), CM_OK);
	assert_int_equal(chat_store_create(pg, user, doc, 3, &row), CM_ENOTFOUND);
	assert_int_equal(chat_store_legacy(pg, user, doc, 3, true, &row), CM_ENOTFOUND);
	cm_pg_close(pg);
}

static void
test_caps(void **state)
{
	static char big[CHAT_MAX_MESSAGE + 2];
	char        chat[40];
	sender      s = {user, NULL, "What does the Calvin cycle fix?", false, 20000, {0}, 0};
	pthread_t   th;
	reply       r;
	int         n;

	(void)state;
	new_chat(chat_c, user, doc_id, chat);
	s.chat = chat;
	memset(big, 'a', CHAT_MAX_MESSAGE + 1);
	r = send_msg(chat_c, user, chat, big, false, 5000);
	assert_int_equal(r.err, CM_EINVAL);
	big[CHAT_MAX_MESSAGE] = '\0'; /* exactly the cap: accepted */
	r = send_msg(chat_c, user, chat, "   ", false, 5000);
	assert_int_equal(r.err, CM_EINVAL);

	/* One turn per user at a time (CHAT_USER_TURNS=1): a second is refused with a retry hint
	 * while the first is written, and nothing of it is stored. */
	control("{\"ttft_ms\":1000}");
	assert_int_equal(pthread_create(&th, NULL, send_thread, &s), 0);
	for (int64_t until = cm_mono_ms() + 3000; cm_mono_ms() < until; usleep(20000)) {
		r = list(user, chat);
		n = (int)((Chat__MessageList *)r.msg)->n_messages;
		reply_free(&r);
		if (n == 1)
			break; /* the first turn's question is stored: it holds the user's turn */
	}
	r = send_msg(chat_c, user, chat, "And what is Rubisco?", false, 5000);
	assert_int_equal(r.err, CM_ELIMIT);
	assert_int_equal(r.retry_after_s, 2);
	pthread_join(th, NULL);
	assert_int_equal(s.r.err, CM_OK);
	reply_free(&s.r);
	r = list(user, chat);
	assert_int_equal(((Chat__MessageList *)r.msg)->n_messages, 2);
	reply_free(&r);

	/* The exact cap is accepted; the chat keeps its newest CHAT_MAX_MESSAGES=10 messages. */
	control("{\"ttft_ms\":0}");
	r = send_msg(chat_c, user, chat, big, false, 20000);
	assert_int_equal(r.err, CM_OK);
	reply_free(&r);
	for (int i = 0; i < 4; i++) {
		r = send_msg(chat_c, user, chat, "What does Rubisco capture?", false, 20000);
		assert_int_equal(r.err, CM_OK);
		reply_free(&r);
	}
	r = list(user, chat);
	assert_int_equal(((Chat__MessageList *)r.msg)->n_messages, 10);
	assert_string_equal(((Chat__MessageList *)r.msg)->messages[0]->content, big);
	reply_free(&r);
}

/* ---- legacy ------------------------------------------------------------------------------- */

static void
test_legacy_history(void **state)
{
	char                 lone[48], doc2[40];
	Chat__HistoryRequest hq = CHAT__HISTORY_REQUEST__INIT;
	Chat__History       *h;
	reply                r;

	(void)state;
	/* Without a selected PDF: FAILED_PRECONDITION "No PDF selected" on every legacy call. */
	snprintf(lone, sizeof(lone), "lone-%s", nonce);
	hq.use_selected = true;
	r = send_msg(chat_c, lone, NULL, "Hello?", true, 5000);
	assert_int_equal(r.err, CM_EPRECOND);
	assert_string_equal(r.message, "No PDF selected");
	r = rpc(chat_c, "chat.History", lone, &hq.base, &chat__history__descriptor, 5000);
	assert_int_equal(r.err, CM_EPRECOND);
	r = rpc(chat_c, "chat.Clear", lone, &hq.base, &chat__clear_response__descriptor, 5000);
	assert_int_equal(r.err, CM_EPRECOND);

	/* Uploading selects the PDF: no history yet, then one turn, then cleared. */
	upload_doc(lone, doc2);
	r = rpc(chat_c, "chat.History", lone, &hq.base, &chat__history__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	assert_int_equal(((Chat__History *)r.msg)->n_turns, 0);
	reply_free(&r);
	r = send_msg(chat_c, lone, NULL, "What does the Calvin cycle fix?", true, 20000);
	assert_int_equal(r.err, CM_OK);
	assert_non_null(strstr(((Chat__Message *)r.msg)->content, "[p. 2]"));
	reply_free(&r);
	r = send_msg(chat_c, lone, NULL, "What is osmosis?", true, 20000);
	assert_int_equal(r.err, CM_OK);
	reply_free(&r);
	r = rpc(chat_c, "chat.History", lone, &hq.base, &chat__history__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	h = (Chat__History *)r.msg;
	assert_int_equal(h->n_turns, 2);
	assert_string_equal(h->turns[0]->user, "What does the Calvin cycle fix?");
	assert_non_null(strstr(h->turns[0]->assistant, "[p. 2]"));
	assert_string_equal(h->turns[1]->user, "What is osmosis?");
	assert_non_null(strstr(h->turns[1]->assistant, "[p. 4]"));
	assert_true(strlen(h->turns[1]->timestamp) >= 20);
	reply_free(&r);
	r = rpc(chat_c, "chat.Clear", lone, &hq.base, &chat__clear_response__descriptor, 5000);
	assert_int_equal(r.err, CM_OK);
	assert_int_equal(((Chat__ClearResponse *)r.msg)->deleted, 4);
	reply_free(&r);
	r = rpc(chat_c, "chat.History", lone, &hq.base, &chat__history__descriptor, 5000);
	assert_int_equal(((Chat__History *)r.msg)->n_turns, 0);
	reply_free(&r);
}

/* ---- offline --------------------------------------------------------------------------------- */

static void
test_offline(void **state)
{
	char           chat[40];
	unsigned       quoted;
	reply          r;
	Chat__Message *m;
	long           answered = fake_chat("answers");

	(void)state;
	new_chat(off_c, user, doc_id, chat);
	r = send_msg(off_c, user, chat, "What does the Calvin cycle fix?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	m = (Chat__Message *)r.msg;
	assert_int_equal(strncmp(m->content, CHAT_OFFLINE_INTRO, strlen(CHAT_OFFLINE_INTRO)), 0);
	assert_int_equal(check_quotes(m->content, &quoted), 1); /* only page 2 shares the words */
	assert_int_equal(quoted, 1u << 2);
	assert_int_equal(citation_bits(m), quoted);
	assert_int_equal(fake_chat("answers"), answered); /* no model was asked */
	reply_free(&r);
	r = send_msg(off_c, user, chat, "Who won the football world cup?", false, 20000);
	assert_int_equal(r.err, CM_OK);
	assert_string_equal(((Chat__Message *)r.msg)->content, CHAT_OFFLINE_NONE);
	reply_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_answer_cites_pages, reset),
	    cmocka_unit_test_setup(test_not_in_document, reset),
	    cmocka_unit_test_setup(test_deltas_before_send_returns, reset),
	    cmocka_unit_test_setup(test_stream_cut_midway, reset),
	    cmocka_unit_test_setup(test_model_fails_before_stream, reset),
	    cmocka_unit_test_setup(test_caller_gives_up, reset),
	    cmocka_unit_test_setup(test_other_users_chat, reset),
	    cmocka_unit_test_setup(test_caps, reset),
	    cmocka_unit_test(test_cascade_deletes_and_refuses),
	    cmocka_unit_test_setup(test_legacy_history, reset),
	    cmocka_unit_test_setup(test_offline, reset),
	};

	cm_log_init("chat-test", CM_LOG_WARN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
