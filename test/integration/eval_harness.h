/*
 * eval_harness.h - the fixture of svc-eval's integration tests (test_eval.c, test_eval_submit.c),
 * included by each: the pgredis fixture's PostgreSQL and Redis, a copy of the fake LLM of its
 * own (test/fakellm on 127.0.0.1:28520, steered through /_control, counted through /_stats), and
 * small stand-ins for svc-pdf and svc-qgen served over real RPC (only their contracts,
 * proto/pdf.proto and proto/qgen.proto, are assumed). Two services run in schemas of their own:
 * `svc` with the fake model (EVAL_BATCH 3, EVAL_PARALLEL 2, EVAL_RETRIES 2, a 1.5 s lease, at
 * most 3 attempts per user at once) and `off` without a model; attempts go through the handlers
 * and eval_runner_run_one on the test's thread.
 */
#ifndef EVAL_HARNESS_H
#define EVAL_HARNESS_H

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "fakellm_helper.h"
#include "worker_helper.h"
#include "cm/arena.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "../../svc-eval/handlers.h"
#include "../../svc-eval/server.h"
#include "../../svc-eval/store.h"
#include "proto/eval.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"

#define FAKE_PORT 28520
#define FAKE_URL "http://127.0.0.1:28520"
#define PDF_RPC "tcp://127.0.0.1:27196"
#define QGEN_RPC "tcp://127.0.0.1:27197"
#define BATCH 3

static pid_t            fake_pid = -1;
static cm_rpc_server   *pdf_srv, *qgen_srv;
static eval_service     svc, off; /* with the fake model; offline */
static eval_worker     *w, *ow;
static cm_service_conns w_conns, ow_conns; /* their connections (worker_helper.h) */
static cm_metrics      *metrics;
static char             schema[40], off_schema[40], owner[48], other[48], model[48];
static char             doc_id[37], set_id[37], set2_id[37], last_query[256];

/* ---- the document and the question sets (the stand-ins' data) -------------------------------- */

static const char *const pages[] = {
    "Photosynthesis converts light energy into chemical energy stored in glucose. The Calvin "
    "cycle fixes carbon dioxide into sugars using ATP and NADPH. Chlorophyll absorbs blue and "
    "red light and reflects green light.",
    "Mitochondria produce most of the ATP a cell needs. Osmosis is the diffusion of water "
    "across a membrane that lets water pass. Enzymes lower the activation energy of reactions "
    "without being consumed.",
};

#define NOPEN 8
static const char *const open_q[NOPEN] = {
    "What does photosynthesis convert?",
    "What does the Calvin cycle do?",
    "What does chlorophyll absorb?",
    "What do mitochondria produce?",
    "What is osmosis?",
    "What do enzymes do?",
    "Where is glucose energy stored?",
    "What reflects green light?",
};
static const char *const open_ref[NOPEN] = {
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Calvin cycle fixes carbon dioxide into sugars using ATP and NADPH.",
    "Chlorophyll absorbs blue and red light.",
    "Mitochondria produce most of the ATP a cell needs.",
    "Osmosis is the diffusion of water across a membrane.",
    "Enzymes lower the activation energy of reactions without being consumed.",
    "Glucose stores chemical energy made from light energy.",
    "Chlorophyll reflects green light.",
};
static const int open_page[NOPEN] = {1, 1, 1, 2, 2, 2, 1, 1};

#define NMCQ 4
static const char *const mcq_q[NMCQ] = {"Which molecule fixes carbon?",
                                        "Which organelle makes ATP?", "What diffuses in osmosis?",
                                        "What colour is reflected?"};
static char             *mcq_opts[NMCQ][4] = {{"Rubisco", "Water", "Oxygen", "Salt"},
                                              {"Nucleus", "Mitochondrion", "Ribosome", "Vacuole"},
                                              {"Sugar", "Salt", "Water", "Protein"},
                                              {"Green", "Blue", "Red", "Black"}};
static const int         mcq_key[NMCQ] = {0, 1, 2, 0};

static Qgen__Question   *questions[NMCQ + NOPEN];
static Qgen__QuestionSet set_msg, set2_msg;
static char              qids[NMCQ + NOPEN][16];

static __attribute__((unused)) void
build_sets(void)
{
	for (int i = 0; i < NMCQ + NOPEN; i++) {
		Qgen__Question *q = calloc(1, sizeof(*q));
		qgen__question__init(q);
		if (i < NMCQ) {
			snprintf(qids[i], sizeof(qids[i]), "m%d", i);
			q->type = (char *)"mcq";
			q->text = (char *)mcq_q[i];
			q->n_options = 4;
			q->options = mcq_opts[i];
			q->answer_index = mcq_key[i];
			q->explanation = (char *)"See the text.";
			q->page = 2;
		} else {
			int k = i - NMCQ;
			snprintf(qids[i], sizeof(qids[i]), "o%d", k);
			q->type = (char *)"open";
			q->text = (char *)open_q[k];
			q->reference = (char *)open_ref[k];
			q->page = open_page[k];
		}
		q->id = qids[i];
		q->difficulty = (char *)"medium";
		questions[i] = q;
	}
	qgen__question_set__init(&set_msg);
	set_msg.id = set_id;
	set_msg.document_id = doc_id;
	set_msg.status = (char *)"succeeded";
	set_msg.n_questions = NMCQ + NOPEN;
	set_msg.questions = questions;
	/* A set with only multiple choice. */
	set2_msg = set_msg;
	set2_msg.id = set2_id;
	set2_msg.n_questions = NMCQ;
}

/* ---- the stand-ins ------------------------------------------------------------------------ */

static __attribute__((unused)) cm_err
pdf_get(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__GetRequest *rq = req;
	Pdf__Document         *d = resp;

	if (strcmp(ctx->subject, owner) != 0 || strcmp(rq->id, doc_id) != 0)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "document not found");
	d->id = doc_id;
	d->pages = 2;
	return CM_OK;
}

static __attribute__((unused)) cm_err
pdf_selected(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	Pdf__SelectedResponse *rs = resp;
	Pdf__Document         *d;

	(void)req;
	if (strcmp(ctx->subject, owner) != 0)
		return cm_rpc_fail(ctx, CM_EPRECOND, "No PDF selected");
	if ((d = cm_rpc_alloc(ctx, sizeof(*d))) == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "oom");
	pdf__document__init(d);
	d->id = doc_id;
	rs->document = d;
	return CM_OK;
}

static __attribute__((unused)) cm_err
pdf_get_page(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__GetPageRequest *rq = req;
	Pdf__Page                 *p = resp;

	if (strcmp(ctx->subject, owner) != 0 || strcmp(rq->id, doc_id) != 0 || rq->page < 1 ||
	    rq->page > 2)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "page not found");
	p->page = rq->page;
	p->text = (char *)pages[rq->page - 1];
	return CM_OK;
}

/* Case-insensitive: does text hold word? */
static __attribute__((unused)) bool
has_word(const char *text, const char *word, size_t len)
{
	for (const char *p = text; *p != '\0'; p++) {
		size_t i = 0;
		while (i < len && p[i] != '\0' &&
		       tolower((unsigned char)p[i]) == tolower((unsigned char)word[i]))
			i++;
		if (i == len)
			return true;
	}
	return false;
}

/* Every word of the query in a page: that page, as one chunk. */
static __attribute__((unused)) cm_err
pdf_search(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__SearchRequest *rq = req;
	Pdf__ChunksResponse      *rs = resp;

	if (strcmp(ctx->subject, owner) != 0 || strcmp(rq->id, doc_id) != 0)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "document not found");
	snprintf(last_query, sizeof(last_query), "%s", rq->query);
	for (int p = 0; p < 2; p++) {
		bool all = true;
		for (const char *q = rq->query; *q != '\0';) {
			size_t n = strcspn(q, " ");
			all = all && (n == 0 || has_word(pages[p], q, n));
			q += n;
			q += *q == ' ';
		}
		if (!all)
			continue;
		Pdf__Chunk *c = cm_rpc_alloc(ctx, sizeof(*c));
		rs->chunks = cm_rpc_alloc(ctx, sizeof(*rs->chunks));
		pdf__chunk__init(c);
		c->index = p;
		c->page_first = c->page_last = p + 1;
		c->text = (char *)pages[p];
		rs->chunks[0] = c;
		rs->n_chunks = 1;
		break;
	}
	rs->sha256 = (char *)"";
	return CM_OK;
}

static __attribute__((unused)) cm_err
qgen_get_set(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Qgen__GetSetRequest *rq = req;
	Qgen__QuestionSet         *out = resp;

	if (strcmp(ctx->subject, owner) != 0 || !rq->include_answers)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such question set");
	if (strcmp(rq->id, set_id) == 0)
		*out = set_msg;
	else if (strcmp(rq->id, set2_id) == 0)
		*out = set2_msg;
	else
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such question set");
	return CM_OK;
}

static const cm_rpc_method pdf_methods[] = {
    {"pdf.Get", &pdf__get_request__descriptor, &pdf__document__descriptor, pdf_get, NULL},
    {"pdf.Selected", &pdf__selected_request__descriptor, &pdf__selected_response__descriptor,
     pdf_selected, NULL},
    {"pdf.GetPage", &pdf__get_page_request__descriptor, &pdf__page__descriptor, pdf_get_page, NULL},
    {"pdf.Search", &pdf__search_request__descriptor, &pdf__chunks_response__descriptor, pdf_search,
     NULL},
};
static const cm_rpc_method qgen_methods_stub[] = {
    {"qgen.GetSet", &qgen__get_set_request__descriptor, &qgen__question_set__descriptor,
     qgen_get_set, NULL},
};

/* ---- the fake LLM -------------------------------------------------------------------------- */

static __attribute__((unused)) json_t *
fake(const char *method, const char *path, const char *body)
{
	cm_buf  b;
	json_t *j = NULL;

	cm_buf_init(&b, 4u << 20);
	if (test_fake_call(FAKE_URL, method, path, body, &b))
		j = json_loadb(b.data != NULL ? b.data : "", b.len, 0, NULL);
	cm_buf_fini(&b);
	return j;
}

static __attribute__((unused)) void
control(const char *body)
{
	json_t *j = fake("POST", "/_control", body);

	assert_non_null(j);
	json_decref(j);
}

static __attribute__((unused)) void
reset_fake(void)
{
	json_t *j = fake("POST", "/_reset", "{\"config\":true}");

	assert_non_null(j);
	json_decref(j);
}

static __attribute__((unused)) json_int_t
stat(const char *name)
{
	json_t    *j = fake("GET", "/_stats", NULL);
	json_int_t v;

	assert_non_null(j);
	v = json_integer_value(json_object_get(j, name));
	json_decref(j);
	return v;
}

/* ---- calls --------------------------------------------------------------------------------- */

typedef test_call call; /* worker_helper.h */

static __attribute__((unused)) cm_err
invoke(call *c, eval_worker *wk, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	return test_invoke(c, wk, fn, subject, req, d, resp);
}

/* Answers to the set: MCQ by index, open answers as given (NULL: not answered). */
typedef struct answers {
	Eval__Answer  a[NMCQ + NOPEN + 2];
	Eval__Answer *p[NMCQ + NOPEN + 2];
	size_t        n;
} answers;

static __attribute__((unused)) void
add_answer(answers *as, const char *qid, int index, const char *text)
{
	Eval__Answer *a = &as->a[as->n];

	eval__answer__init(a);
	a->question_id = (char *)qid;
	if (text != NULL) {
		a->value_case = EVAL__ANSWER__VALUE_TEXT;
		a->text = (char *)text;
	} else if (index >= 0) {
		a->value_case = EVAL__ANSWER__VALUE_OPTION_INDEX;
		a->option_index = index;
	}
	as->p[as->n] = a;
	as->n++;
}

static __attribute__((unused)) cm_err
submit_v1(eval_worker *wk, const char *subject, const char *set, answers *as,
          const char *strictness, char *attempt, char *job, call *c, Eval__Attempt **out)
{
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	Eval__Attempt      *at = NULL;
	cm_err              err;

	rq.question_set_id = (char *)set;
	rq.answers = as->p;
	rq.n_answers = as->n;
	rq.strictness = (char *)strictness;
	rq.overall = true;
	err = invoke(c, wk, eval_handle_submit, subject, &rq, &eval__attempt__descriptor,
	             (void **)&at);
	if (err == CM_OK) {
		snprintf(attempt, 40, "%s", at->id);
		snprintf(job, 40, "%s", at->job_id);
	}
	if (out != NULL)
		*out = at;
	return err;
}

/* Runs queued attempts until this one has ended (with a deadline). */
static __attribute__((unused)) void
run_until_done(eval_service *s, eval_worker *wk, const char *attempt)
{
	for (int64_t until = cm_mono_ms() + 30000; cm_mono_ms() < until;) {
		eval_attempt_row a;
		bool             ran = false;
		assert_int_equal(eval_store_get_attempt(wk->pg, attempt, NULL, false, &a), CM_OK);
		bool open = strcmp(a.status, "queued") == 0 || strcmp(a.status, "running") == 0;
		eval_attempt_row_fini(&a);
		if (!open)
			return;
		assert_int_equal(eval_runner_run_one(s, wk, &ran), CM_OK);
		if (!ran)
			usleep(50 * 1000);
	}
	fail_msg("attempt %s did not end", attempt);
}

static __attribute__((unused)) Eval__Attempt *
get_attempt(call *c, eval_worker *wk, const char *subject, const char *id, cm_err *err)
{
	Eval__AttemptRef rq = EVAL__ATTEMPT_REF__INIT;
	Eval__Attempt   *at = NULL;

	rq.id = (char *)id;
	*err = invoke(c, wk, eval_handle_get_attempt, subject, &rq, &eval__attempt__descriptor,
	              (void **)&at);
	return at;
}

/* The source of each stored result ("rule", "model", "cache", "offline"). */
static __attribute__((unused)) int
count_source(eval_worker *wk, const char *attempt, const char *source)
{
	eval_attempt_row a;
	int              n = 0;

	assert_int_equal(eval_store_get_attempt(wk->pg, attempt, NULL, true, &a), CM_OK);
	for (size_t i = 0; i < a.n_results; i++)
		n += strcmp(a.results[i].source, source) == 0;
	eval_attempt_row_fini(&a);
	return n;
}

static __attribute__((unused)) uint64_t
metric(const char *line_start)
{
	cm_buf      b;
	uint64_t    v = 0;
	const char *p;

	cm_buf_init(&b, 1u << 20);
	assert_int_equal(cm_metrics_render(metrics, &b), CM_OK);
	if ((p = strstr(b.data, line_start)) != NULL)
		v = strtoull(p + strlen(line_start), NULL, 10);
	cm_buf_fini(&b);
	return v;
}

/* The open answers of the set with a word of salt, so a test's answers are its own. */
static __attribute__((unused)) void
open_answers(answers *as, const char *salt, int nopen)
{
	static char text[NOPEN][256];

	for (int k = 0; k < nopen; k++) {
		snprintf(text[k], sizeof(text[k]), "%s %s", open_ref[k], salt);
		add_answer(as, qids[NMCQ + k], -1, text[k]);
	}
}

/* ---- setup --------------------------------------------------------------------------------- */

static __attribute__((unused)) cm_err
open_service(eval_service *s, const char *sch, eval_worker **wk, cm_service_conns *wconns)
{
	cm_service_config common;
	cm_jobs_options   jo;
	void             *st = NULL;
	eval_config       cfg;
	char              redis_port[8];
	cm_pg            *pg = NULL;
	cm_migration      migs[16];
	size_t            n = eval_migrations_all(migs, 16);
	cm_err            err;

	snprintf(redis_port, sizeof(redis_port), "%s",
	         getenv("CM_TEST_REDIS_PORT") != NULL ? getenv("CM_TEST_REDIS_PORT") : "26379");
	memset(&common, 0, sizeof(common));
	common.log_level = "warn";
	common.database_url = getenv("CM_TEST_PG");
	common.redis_host = "127.0.0.1";
	(void)cm_parse_i64(redis_port, &common.redis_port);
	common.workers = 1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.events_url = "";
	cfg.pdf_urls = PDF_RPC;
	cfg.qgen_urls = QGEN_RPC;
	cfg.runners = 1;
	cfg.batch = BATCH;
	cfg.parallel = 2;
	cfg.retries = 2;
	cfg.lease_ms = 1500;
	cfg.poll_ms = 100;
	cfg.cache_ttl_s = 600;
	cfg.near_pct = 80;
	cfg.user_active_max = 3;
	cfg.retry_after_s = 5;
	if ((err = cm_pg_open(&pg, common.database_url, sch)) != CM_OK ||
	    (err = cm_pg_migrate_up(pg, sch, migs, n)) != CM_OK) {
		cm_pg_close(pg);
		return err;
	}
	cm_pg_close(pg);
	if ((err = eval_service_init(s, &common, sch, &cfg, metrics)) != CM_OK)
		return err;
	eval_jobs_options(s, &jo);
	err = test_worker_open(&common, sch, &jo, eval_worker_init, s, wconns, &st);
	*wk = st;
	return err;
}

static __attribute__((unused)) cm_err
start_stub(cm_rpc_server **srv, const char *url, const cm_rpc_method *m, size_t n)
{
	cm_rpc_server_config c;

	memset(&c, 0, sizeof(c));
	c.url = url;
	c.workers = 2;
	c.methods = m;
	c.n_methods = n;
	return cm_rpc_server_start(srv, &c);
}

static __attribute__((unused)) int
setup(void **state)
{
	char r[8], nonce[17];

	(void)state;
	cm_log_init("eval-test", CM_LOG_WARN);
	if (getenv("CM_TEST_PG") == NULL)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(schema, sizeof(schema), "eval_it_%.8s", nonce);
	snprintf(off_schema, sizeof(off_schema), "eval_off_%.8s", nonce);
	snprintf(owner, sizeof(owner), "student-%s", nonce);
	snprintf(other, sizeof(other), "other-%s", nonce);
	/* The model's name is part of the grade cache's keys: a run of its own. */
	snprintf(model, sizeof(model), "fake-%s", nonce);
	cm_uuid_v4(doc_id);
	cm_uuid_v4(set_id);
	cm_uuid_v4(set2_id);
	build_sets();
	/* Set before any thread runs, and later only replaced (never added or removed): threads
	 * read the environment (libpq when it connects, the resolver), and adding or removing a
	 * name may move it under them (test_chat.c saw getenv crash that way). */
	setenv("LLM_BASE_URL", FAKE_URL "/v1", 1);
	setenv("LLM_MODEL", model, 1);
	setenv("LLM_MAX_ATTEMPTS", "3", 1);
	setenv("LLM_BACKOFF_BASE_MS", "20", 1);
	setenv("LLM_BACKOFF_MAX_MS", "100", 1);
	setenv("LLM_TIMEOUT_MS", "10000", 1);
	if ((fake_pid = test_fake_start(FAKE_PORT, NULL)) < 0 ||
	    start_stub(&pdf_srv, PDF_RPC, pdf_methods, 4) != CM_OK ||
	    start_stub(&qgen_srv, QGEN_RPC, qgen_methods_stub, 1) != CM_OK ||
	    (metrics = cm_metrics_alloc("eval_")) == NULL)
		return -1;
	if (open_service(&svc, schema, &w, &w_conns) != CM_OK || svc.llm == NULL)
		return -1;
	setenv("LLM_BASE_URL", "", 1); /* the same service without a model */
	if (open_service(&off, off_schema, &ow, &ow_conns) != CM_OK || off.llm != NULL)
		return -1;
	/* The stand-ins must be connected before the first call. */
	for (int64_t until = cm_mono_ms() + 3000;
	     cm_mono_ms() < until &&
	     (cm_rpc_client_healthy(svc.pdf) < 1 || cm_rpc_client_healthy(svc.qgen) < 1 ||
	      cm_rpc_client_healthy(off.pdf) < 1);)
		usleep(10000);
	return 0;
}

static __attribute__((unused)) void
drop_schema(const char *sch)
{
	cm_pg       *pg = NULL;
	cm_migration migs[16];
	size_t       n = eval_migrations_all(migs, 16);

	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), sch) != CM_OK ||
	    cm_pg_migrate_down(pg, sch, migs, n, 0) != CM_OK)
		fprintf(stderr, "schema %s left behind\n", sch);
	cm_pg_close(pg);
}

static __attribute__((unused)) int
teardown(void **state)
{
	(void)state;
	test_worker_close(eval_worker_fini, &svc, w, &w_conns);
	test_worker_close(eval_worker_fini, &off, ow, &ow_conns);
	eval_service_fini(&svc);
	eval_service_fini(&off);
	drop_schema(schema);
	drop_schema(off_schema);
	cm_rpc_server_stop(pdf_srv);
	cm_rpc_server_stop(qgen_srv);
	cm_metrics_free(metrics);
	(void)test_fake_stop(fake_pid);
	for (int i = 0; i < NMCQ + NOPEN; i++)
		free(questions[i]);
	curl_global_cleanup();
	return 0;
}

/* Each test starts with a fresh fake (counters and settings). */
static __attribute__((unused)) int
fresh(void **state)
{
	(void)state;
	reset_fake();
	return 0;
}

#endif
