/*
 * test_qgen_offline.c - svc-qgen without an LLM (the offline provider), against a real svc-pdf
 * (its RPC server, in this process) and the pgredis fixture's PostgreSQL and Redis: a set is
 * created through the Create handler (which asks svc-pdf for the document), run by a runner,
 * and read back; more questions than the text holds fail with a reason; another user's document
 * is NOT_FOUND. Every question is grounded: its quote, from its page, holds its answer, and
 * no question was dropped as ungrounded or ambiguous; it cites the page its sentence is on. The
 * quality check: on the bash manual typeset by groff (gen_test_pdfs.sh real, 87 pages) and on a
 * CRAN-like package manual full of URLs, e-mail addresses, calls and formulas, a 25-question set
 * holds exactly 25 questions, no blank in a URL or code or on a function word, and no distractor in
 * more than a fifth of the questions (offline_survey.h prints the figures). Headers of both
 * services are included by path (names like config.h clash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "cran_manual.h"
#include "offline_survey.h"
#include "qgen_harness.h"
#include "../../svc-pdf/testpdf.h"
#include "../../svc-qgen/quality.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"

#define PDF_RPC "tcp://127.0.0.1:27193"

#define RUN_TIMEOUT_MS 60000 /* a set's job, run on this thread, has ended by then */

static test_pdf          psvc; /* svc-pdf, and its worker for uploading directly */
static test_qgen         qg;   /* svc-qgen and its worker */
static cm_service_config common;
static char              doc_id[40], user[48], schema[40];

/* Uploads PDF bytes as the user; fills the document id. */
static cm_err
upload(const char *subject, const char *filename, const void *pdf, size_t len, char *doc)
{
	return test_pdf_upload(&psvc, subject, filename, pdf, len, doc, NULL);
}

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

static int
setup(void **state)
{
	qgen_config qc;
	const char *db_url = getenv("CM_TEST_PG");
	pdf_testpdf o;
	cm_buf      b;
	char        nonce[17], r[8];
	const char *pages[4];

	(void)state;
	cm_log_init("qgen-test", CM_LOG_WARN);
	unsetenv("LLM_BASE_URL");
	unsetenv("LLM_PROVIDERS");
	if (test_pdf_start(&psvc, "/tmp/qgen-itest-XXXXXX", db_url, test_redis_port(), PDF_RPC,
	                   "127.0.0.1:29193", 2) != CM_OK)
		return -1;

	test_fixture_config(&common, "tcp://127.0.0.1:27194", "127.0.0.1:29194");
	test_qgen_config(&qc, PDF_RPC); /* 4 calls of 5 at once, a 60 s set cache */
	/* A schema of its own: the e2e stack's svc-qgen replicas, if up, must not claim our jobs.
	 */
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, 4, nonce);
	snprintf(schema, sizeof(schema), "qgen_it_%s", nonce);
	if (test_qgen_start(&qg, &common, schema, &qc) != CM_OK || qg.svc.llm != NULL)
		return -1;

	/* A 4-page document, unique to this run, owned by this run's user. */
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(user, sizeof(user), "offline-%s", nonce);
	char text[4][1024];
	for (int i = 0; i < 4; i++) {
		snprintf(text[i], sizeof(text[i]), "%s Run %s.", prose[i], nonce);
		pages[i] = text[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = 4;
	o.pages = pages;
	o.title = "Biology notes";
	cm_buf_init(&b, 1u << 20);
	if (pdf_testpdf_build(&o, &b) != CM_OK ||
	    upload(user, "notes.pdf", b.data, b.len, doc_id) != CM_OK)
		return -1;
	cm_buf_fini(&b);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_qgen_stop(&qg);
	return test_pdf_stop(&psvc);
}

/* Creates a set as the user; returns the status and fills job/set ids. */
static cm_err
create(const char *subject, const char *doc, int count, bool both, char *job, char *set)
{
	Qgen__CreateRequest   rq = QGEN__CREATE_REQUEST__INIT;
	Qgen__CreateResponse *rs = NULL;
	char                 *types[2] = {(char *)"mcq", (char *)"open"};
	test_call             c;
	cm_err                err;
	char                  topic[48];

	rq.document_id = (char *)doc;
	rq.count = count;
	rq.types = types;
	rq.n_types = both ? 2 : 1;
	rq.difficulty = (char *)"easy";
	snprintf(topic, sizeof(topic), "t%d", count); /* not cached from an earlier run */
	rq.topic = topic;
	err = test_invoke(&c, qg.w, qgen_handle_create, subject, &rq,
	                  &qgen__create_response__descriptor, (void **)&rs);
	if (err == CM_OK) {
		snprintf(job, 40, "%s", rs->job_id);
		snprintf(set, 40, "%s", rs->question_set_id);
	}
	cm_arena_fini(&c.arena);
	return err;
}

/* Runs queued jobs until this one has ended. */
static void
run_until_done(const char *job)
{
	assert_int_equal(test_qgen_run_until_done(&qg, job, RUN_TIMEOUT_MS, NULL), CM_OK);
}

/* The value of svc-qgen's metric line `name` (with labels), -1 when absent. */
static long long
metric(const char *name)
{
	return test_metric(qg.metrics, name);
}

/* True when a's letters and digits appear, in order, among quote's (qgen_normalize). */
static bool
quote_holds(const char *quote, const char *a)
{
	char nq[QGEN_MAX_TEXT + 1], na[QGEN_MAX_TEXT + 1];

	qgen_normalize(quote, nq, sizeof(nq));
	qgen_normalize(a, na, sizeof(na));
	return na[0] != '\0' && strstr(nq, na) != NULL;
}

/* True when the sentence q was made from (an open question's reference, the statement an
 * mcq's explanation quotes) is on the page q cites: letters and digits, in order, among the
 * page's (svc-pdf's text of it). */
static bool
on_cited_page(const Qgen__Question *q)
{
	Pdf__GetPageRequest rq = PDF__GET_PAGE_REQUEST__INIT;
	Pdf__Page          *pg = NULL;
	test_call           c;
	char                sentence[QGEN_MAX_TEXT + 1], ns[QGEN_MAX_TEXT + 1], *np = NULL;
	const char         *from = q->reference;
	size_t              n, k = 0;
	bool                on = false;

	if (strcmp(q->type, "mcq") == 0) {
		assert_non_null(from = strchr(q->explanation, '"')); /* The text says: "..." */
		from++;
	}
	n = strlen(from);
	snprintf(sentence, sizeof(sentence), "%.*s", (int)(n > 0 && from[n - 1] == '"' ? n - 1 : n),
	         from);
	rq.id = doc_id;
	rq.page = q->page;
	assert_int_equal(test_invoke(&c, psvc.w, pdf_handle_get_page, user, &rq,
	                             &pdf__page__descriptor, (void **)&pg),
	                 CM_OK);
	n = strlen(pg->text) + 1;
	assert_non_null(np = malloc(n));
	qgen_normalize(pg->text, np, n);
	qgen_normalize(sentence, ns, sizeof(ns));
	for (size_t i = 0; ns[i] != '\0'; i++) /* without spaces: a word hyphenated at a line end */
		if (ns[i] != ' ')
			ns[k++] = ns[i];
	ns[k] = '\0';
	for (size_t i = 0, m = 0;; i++)
		if (np[i] != ' ' && (np[m++] = np[i]) == '\0')
			break;
	on = k > 0 && strstr(np, ns) != NULL;
	free(np);
	cm_arena_fini(&c.arena);
	return on;
}

static void
test_offline_set(void **state)
{
	char                job[40], set[40];
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__QuestionSet  *qs = NULL;
	test_call           c;
	int                 open = 0;

	(void)state;
	assert_int_equal(create(user, doc_id, 8, true, job, set), CM_OK);
	run_until_done(job);
	rq.id = set;
	rq.include_answers = true;
	assert_int_equal(test_invoke(&c, qg.w, qgen_handle_get_set, user, &rq,
	                             &qgen__question_set__descriptor, (void **)&qs),
	                 CM_OK);
	assert_string_equal(qs->status, "succeeded");
	assert_int_equal(qs->n_questions, 8);
	for (size_t i = 0; i < qs->n_questions; i++) {
		const Qgen__Question *q = qs->questions[i];
		assert_true(q->page >= 1 && q->page <= 4);
		assert_string_equal(q->difficulty, "easy");
		assert_true(q->quote[0] != '\0' && strlen(q->quote) <= 300);
		/* one passage spans the 4 short pages: each question cites its sentence's page */
		assert_true(on_cited_page(q));
		if (strcmp(q->type, "open") == 0) {
			open++;
			assert_true(strlen(q->reference) > 20);
			/* the reference is a sentence of the page: the quote holds it, or it
			 * holds the clipped quote */
			assert_true(quote_holds(q->quote, q->reference) ||
			            quote_holds(q->reference, q->quote));
		} else {
			assert_int_equal(q->n_options, 4);
			assert_true(q->answer_index >= 0 && q->answer_index < 4);
			assert_true(quote_holds(q->quote, q->options[q->answer_index]));
		}
	}
	assert_true(open > 0 && open < 8);
	assert_int_equal(metric("qgen_questions_rejected_total{reason=\"ungrounded\"}"), 0);
	assert_int_equal(metric("qgen_questions_rejected_total{reason=\"ambiguous_distractor\"}"),
	                 0);
	cm_arena_fini(&c.arena);
}

static void
test_offline_too_many(void **state)
{
	char         job[40], set[40];
	cm_jobs_info info;

	(void)state;
	assert_int_equal(create(user, doc_id, 150, false, job, set), CM_OK);
	run_until_done(job);
	assert_int_equal(cm_jobs_get(qg.w->jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_FAILED);
	assert_non_null(strstr(info.error, "without a model"));
}

static void
test_other_users_document(void **state)
{
	char job[40], set[40];

	(void)state;
	assert_int_equal(create("someone-else", doc_id, 5, false, job, set), CM_ENOTFOUND);
	assert_int_equal(create(user, "00000000-0000-4000-8000-000000000000", 5, false, job, set),
	                 CM_ENOTFOUND);
}

/* ---- quality on manual-like documents ------------------------------------------------------- */

/* Runs a set of count questions on doc and surveys it; the set must hold exactly count. */
static void
survey_set(const char *doc, int count, bool both, const char *label, survey *sv)
{
	char                job[40], set[40];
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__QuestionSet  *qs = NULL;
	test_call           c;
	const char        **opts = calloc((size_t)count * 4, sizeof(*opts));
	int                *ans = calloc((size_t)count, sizeof(*ans)), nm = 0;

	assert_non_null(opts);
	assert_non_null(ans);
	memset(sv, 0, sizeof(*sv));
	assert_int_equal(create(user, doc, count, both, job, set), CM_OK);
	run_until_done(job);
	rq.id = set;
	rq.include_answers = true;
	assert_int_equal(test_invoke(&c, qg.w, qgen_handle_get_set, user, &rq,
	                             &qgen__question_set__descriptor, (void **)&qs),
	                 CM_OK);
	assert_string_equal(qs->status, "succeeded");
	assert_int_equal(qs->n_questions, (size_t)count);
	for (size_t i = 0; i < qs->n_questions; i++) {
		const Qgen__Question *q = qs->questions[i];
		if (strcmp(q->type, "mcq") == 0) {
			assert_int_equal(q->n_options, 4);
			survey_mcq(sv, q->text, (const char *const *)q->options, q->answer_index);
			for (int k = 0; k < 4; k++)
				opts[4 * nm + k] = q->options[k];
			ans[nm++] = q->answer_index;
		} else {
			survey_open(sv, q->text);
		}
	}
	survey_distractors(sv, opts, ans, nm);
	survey_print(sv, label, stderr);
	cm_arena_fini(&c.arena);
	free(opts);
	free(ans);
}

static void
test_offline_quality_real_manual(void **state)
{
	char   path[512], cmd[1100], doc[40];
	char  *pdf = NULL;
	FILE  *f;
	long   len;
	survey sv;

	(void)state;
	snprintf(path, sizeof(path), "%s/qgen-offline-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	assert_int_equal(system(cmd), 0);
	assert_non_null(f = fopen(path, "rb"));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	assert_non_null(pdf = malloc((size_t)len));
	assert_int_equal(fread(pdf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	assert_int_equal(upload(user, "bash.pdf", pdf, (size_t)len, doc), CM_OK);
	free(pdf);

	survey_set(doc, 25, false, "offline, bash manual, 25 mcq", &sv);
	assert_int_equal(sv.mcq, 25);
	assert_int_equal(sv.in_url, 0);
	assert_int_equal(sv.in_code, 0);
	assert_int_equal(sv.function_word, 0);
	assert_true(sv.top_distractor_uses <= 25 / 5);

	survey_set(doc, 24, true, "offline, bash manual, 24 mixed", &sv);
	assert_int_equal(sv.mcq + sv.open, 24);
	assert_int_equal(sv.in_url + sv.in_code + sv.function_word, 0);
	assert_true(sv.top_distractor_uses <= 24 / 5);
	assert_true(sv.open_forms >= 4); /* not one "Explain ..." template */
}

static void
test_offline_quality_cran_manual(void **state)
{
	cm_buf b;
	char   doc[40];
	survey sv;

	(void)state;
	cm_buf_init(&b, 1u << 20);
	assert_int_equal(cran_manual_pdf("SuppDists", &b), CM_OK);
	assert_int_equal(upload(user, "SuppDists.pdf", b.data, b.len, doc), CM_OK);
	cm_buf_fini(&b);

	survey_set(doc, 25, false, "offline, CRAN-like manual, 25 mcq", &sv);
	assert_int_equal(sv.mcq, 25);
	assert_int_equal(sv.in_url, 0);
	assert_int_equal(sv.in_code, 0);
	assert_int_equal(sv.function_word, 0);
	assert_true(sv.top_distractor_uses <= 25 / 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offline_set),
	    cmocka_unit_test(test_offline_too_many),
	    cmocka_unit_test(test_other_users_document),
	    cmocka_unit_test(test_offline_quality_real_manual),
	    cmocka_unit_test(test_offline_quality_cran_manual),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
