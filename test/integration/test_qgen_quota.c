/*
 * test_qgen_quota.c - svc-qgen's per-user quotas and fair claims, against a real svc-pdf (its
 * RPC server, in this process) and the pgredis fixture's PostgreSQL: the 6th open set of a user
 * is RESOURCE_EXHAUSTED with retry_after_s while another user's set is accepted; the questions
 * quota; a burst of parallel creates (one worker and connection per thread, as on several RPC
 * workers or replicas) fills the quota exactly and never passes it; the job queue hands out
 * another user's job before the hog's next one. No runner runs: sets stay queued.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "qgen_harness.h"
#include "../../svc-pdf/testpdf.h"
#include "proto/qgen.pb-c.h"

#define PDF_RPC "tcp://127.0.0.1:27291"
#define BURST 12 /* parallel creates of one user */

static test_pdf          psvc; /* svc-pdf, and its worker for uploading directly */
static test_qgen         qg;   /* svc-qgen and its worker */
static cm_service_config common;
static char              schema[40], nonce[17];

/* A user of this run ("<tag>-<nonce>") and a document of theirs. */
typedef struct tuser {
	char name[48];
	char doc[40];
} tuser;

static void
new_user(const char *tag, tuser *u)
{
	static const char prose[] =
	    "Photosynthesis converts light energy into chemical energy stored in glucose. The "
	    "Calvin cycle fixes carbon dioxide into sugars using ATP and NADPH. Mitochondria "
	    "produce most of the ATP that a eukaryotic cell needs for growth and repair.";
	char        text[512];
	const char *pages[1] = {text};
	pdf_testpdf o;
	cm_buf      b;

	snprintf(u->name, sizeof(u->name), "%s-%s", tag, nonce);
	snprintf(text, sizeof(text), "%s User %s.", prose, u->name);
	memset(&o, 0, sizeof(o));
	o.npages = 1;
	o.pages = pages;
	cm_buf_init(&b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, &b), CM_OK);
	assert_int_equal(test_pdf_upload(&psvc, u->name, "notes.pdf", b.data, b.len, u->doc, NULL),
	                 CM_OK);
	cm_buf_fini(&b);
}

/* Creates a set of count questions as u on worker w; job receives its job id (when CM_OK),
 * *retry_s the call's retry_after_s. */
static cm_err
create_on(qgen_worker *w, const tuser *u, int count, char job[40], int *retry_s)
{
	Qgen__CreateRequest   rq = QGEN__CREATE_REQUEST__INIT;
	Qgen__CreateResponse *rs = NULL;
	char                 *types[1] = {(char *)"mcq"};
	test_call             c;
	cm_err                err;

	rq.document_id = (char *)u->doc;
	rq.count = count;
	rq.types = types;
	rq.n_types = 1;
	rq.topic = (char *)"";
	err = test_invoke(&c, w, qgen_handle_create, u->name, &rq,
	                  &qgen__create_response__descriptor, (void **)&rs);
	if (err == CM_OK)
		snprintf(job, 40, "%s", rs->job_id);
	if (retry_s != NULL)
		*retry_s = c.ctx.retry_after_s;
	cm_arena_fini(&c.arena);
	return err;
}

static cm_err
create(const tuser *u, int count, char job[40], int *retry_s)
{
	return create_on(qg.w, u, count, job, retry_s);
}

/* u's jobs that are queued or running, counted in the database. */
static int
open_jobs(const tuser *u)
{
	cm_pg_result *r = NULL;
	const char   *p[1] = {u->name};
	int64_t       n = -1;

	assert_int_equal(cm_pg_exec(qg.w->pg,
	                            "SELECT count(*) FROM jobs WHERE owner = $1"
	                            " AND status IN ('queued', 'running')",
	                            1, p, &r),
	                 CM_OK);
	assert_true(cm_parse_i64(cm_pg_get(r, 0, 0), &n));
	cm_pg_result_free(r);
	return (int)n;
}

static int
setup(void **state)
{
	qgen_config  qc;
	const char  *db_url = getenv("CM_TEST_PG");
	char         r[8];
	cm_cfg_entry t[32];
	size_t       nt;

	(void)state;
	cm_log_init("qgen-quota-test", CM_LOG_WARN);
	unsetenv("LLM_BASE_URL");
	unsetenv("LLM_PROVIDERS");
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	if (test_pdf_start(&psvc, "/tmp/qgen-quota-XXXXXX", db_url, test_redis_port(), PDF_RPC,
	                   "127.0.0.1:29291", 4) != CM_OK)
		return -1;

	test_fixture_config(&common, "tcp://127.0.0.1:27292", "127.0.0.1:29292");
	/* The shipped defaults (the quotas among them), with events off and our svc-pdf. */
	memset(&qc, 0, sizeof(qc));
	nt = qgen_config_table(&qc, t, sizeof(t) / sizeof(t[0]));
	if (cm_config_defaults(t, nt, NULL, 0) != CM_OK)
		return -1;
	qc.events_url = "";
	qc.pdf_urls = PDF_RPC;
	/* A schema of its own: the e2e stack's svc-qgen replicas, if up, must not claim our jobs.
	 */
	snprintf(schema, sizeof(schema), "qgen_q_%.8s", nonce);
	if (test_qgen_start(&qg, &common, schema, &qc) != CM_OK || qg.svc.llm != NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_qgen_stop(&qg);
	return test_pdf_stop(&psvc);
}

/* The defaults: 5 open sets per user. The 6th waits; another user does not; a finished set
 * frees a place. Then the queue: another user's job comes before the hog's second one. */
static void
test_sixth_set_refused(void **state)
{
	tuser        hog, meek;
	char         jobs[5][40], job[40], meek_job[40];
	cm_jobs_task t[1];
	int          retry = 0, n = 0;

	(void)state;
	assert_int_equal(qg.svc.cfg.user_max_sets, 5);
	assert_int_equal(qg.svc.cfg.user_max_questions, 500);
	new_user("hog", &hog);
	new_user("meek", &meek);
	for (int i = 0; i < 5; i++)
		assert_int_equal(create(&hog, 5, jobs[i], NULL), CM_OK);
	assert_int_equal(create(&hog, 5, job, &retry), CM_ELIMIT);
	assert_int_equal(retry, qg.svc.cfg.retry_after_s);
	assert_true(retry > 0);
	assert_int_equal(open_jobs(&hog), 5);
	assert_int_equal(create(&meek, 5, meek_job, &retry), CM_OK);
	assert_int_equal(retry, 0);

	/* Cancelling one of hog's sets makes room for exactly one more. */
	assert_int_equal(cm_jobs_cancel(qg.w->jobs, jobs[4], hog.name), CM_OK);
	assert_int_equal(create(&hog, 5, jobs[4], NULL), CM_OK);
	assert_int_equal(create(&hog, 5, job, NULL), CM_ELIMIT);

	/* Fair claims: hog's oldest first (the older of two first turns), then meek's, although
	 * hog has four older jobs still queued. */
	assert_int_equal(cm_jobs_claim(qg.w->jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, jobs[0]);
	cm_jobs_tasks_fini(t, n);
	assert_int_equal(cm_jobs_claim(qg.w->jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, meek_job);
	cm_jobs_tasks_fini(t, n);
	/* Running (claimed) sets still count. */
	assert_int_equal(create(&hog, 5, job, NULL), CM_ELIMIT);
}

/* 500 questions per user in open sets: 200 + 200 pass, 200 more would be 600, 100 fit. */
static void
test_question_quota(void **state)
{
	tuser u;
	char  job[40];
	int   retry = 0;

	(void)state;
	new_user("many", &u);
	assert_int_equal(create(&u, 200, job, NULL), CM_OK);
	assert_int_equal(create(&u, 200, job, NULL), CM_OK);
	assert_int_equal(create(&u, 200, job, &retry), CM_ELIMIT);
	assert_int_equal(retry, qg.svc.cfg.retry_after_s);
	assert_int_equal(create(&u, 100, job, NULL), CM_OK);
	assert_int_equal(create(&u, 1, job, NULL), CM_ELIMIT);
	assert_int_equal(open_jobs(&u), 3);
}

typedef struct burster {
	const tuser       *u;
	qgen_worker       *w;
	pthread_barrier_t *start;
	cm_err             err;
} burster;

static void *
burst_main(void *arg)
{
	burster *b = arg;
	char     job[40];

	pthread_barrier_wait(b->start);
	b->err = create_on(b->w, b->u, 5, job, NULL);
	return NULL;
}

/* BURST creates of one user at once, each on its own worker and connection: exactly 5 pass
 * and BURST - 5 are refused with RESOURCE_EXHAUSTED; the database holds 5 open jobs. */
static void
test_parallel_burst(void **state)
{
	tuser             u;
	burster           b[BURST];
	pthread_t         th[BURST];
	cm_service_conns  conns[BURST];
	void             *st[BURST];
	pthread_barrier_t start;
	int               ok = 0, limited = 0;

	(void)state;
	new_user("burst", &u);
	assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
	for (int i = 0; i < BURST; i++) {
		assert_int_equal(test_worker_open(&common, schema, &qg.jo, qgen_worker_init,
		                                  &qg.svc, &conns[i], &st[i]),
		                 CM_OK);
		b[i] = (burster){&u, st[i], &start, CM_EINTERNAL};
	}
	for (int i = 0; i < BURST; i++)
		assert_int_equal(pthread_create(&th[i], NULL, burst_main, &b[i]), 0);
	for (int i = 0; i < BURST; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < BURST; i++) {
		if (b[i].err == CM_OK)
			ok++;
		else if (b[i].err == CM_ELIMIT)
			limited++;
		test_worker_close(qgen_worker_fini, &qg.svc, st[i], &conns[i]);
	}
	assert_int_equal(ok, 5);
	assert_int_equal(limited, BURST - 5);
	assert_int_equal(open_jobs(&u), 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sixth_set_refused),
	    cmocka_unit_test(test_question_quota),
	    cmocka_unit_test(test_parallel_burst),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
