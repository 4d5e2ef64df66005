/*
 * test_qgen_store.c - svc-qgen's storage against a real PostgreSQL (fixture pgredis), in a
 * schema of its own per run: every migration up and down, sets by owner, the finish-once rule
 * that settles two runners of one job, idempotent batches, a job and its set cancelled or failed
 * in one transaction, and packed question lists that survive the bytea round trip with awkward
 * text (braces, quotes, NUL-free UTF-8).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/jobs.h"
#include "cm/pg.h"
#include "cm/util.h"
#include "../../svc-qgen/codec.h"
#include "../../svc-qgen/server.h"
#include "../../svc-qgen/store.h"

static char   schema[40];
static cm_pg *pg;

static int
setup(void **state)
{
	cm_migration migs[16];
	size_t       n = qgen_migrations_all(migs, 16);
	char         id[37];

	(void)state;
	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "qgen_t_%.8s", id);
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK)
		return -1;
	return cm_pg_migrate_up(pg, schema, migs, n) == CM_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	cm_migration migs[16];
	size_t       n = qgen_migrations_all(migs, 16);
	int          v = -1;

	(void)state;
	/* Every down part runs cleanly. */
	if (cm_pg_migrate_down(pg, schema, migs, n, 0) != CM_OK ||
	    cm_pg_schema_version(pg, schema, &v) != CM_OK || v != 0)
		return -1;
	cm_pg_close(pg);
	return 0;
}

static void
make_question(qgen_question *q, const char *text, int page)
{
	memset(q, 0, sizeof(*q));
	q->type = QGEN_MCQ;
	q->text = strdup(text);
	for (int i = 0; i < 4; i++) {
		char o[32];
		snprintf(o, sizeof(o), "option %d {x}", i);
		q->options[i] = strdup(o);
	}
	q->answer = page % 4;
	q->explanation = strdup("because \"the text\" says so: \\ é");
	q->difficulty = QGEN_HARD;
	q->page = page;
}

static void
new_set(qgen_set_row *row, const char *owner)
{
	memset(row, 0, sizeof(*row));
	cm_uuid_v4(row->id);
	snprintf(row->owner, sizeof(row->owner), "%s", owner);
	cm_uuid_v4(row->document_id);
	memset(row->sha256, 'a', 64);
	cm_uuid_v4(row->job_id);
	snprintf(row->status, sizeof(row->status), "queued");
	row->count = 2;
	snprintf(row->types, sizeof(row->types), "mcq");
	snprintf(row->difficulty, sizeof(row->difficulty), "hard");
	snprintf(row->topic, sizeof(row->topic), "cells");
}

static void
test_set_lifecycle(void **state)
{
	qgen_set_row  row, got;
	qgen_qlist    l, back;
	qgen_question q;
	uint8_t      *blob;
	size_t        len;
	bool          won;

	(void)state;
	new_set(&row, "user-1");
	assert_int_equal(qgen_store_insert_set(pg, &row), CM_OK);
	/* Owner check: another user's id is not found, as is a malformed one. */
	assert_int_equal(qgen_store_get_set(pg, row.id, "user-2", false, &got), CM_ENOTFOUND);
	assert_int_equal(qgen_store_get_set(pg, "x", "user-1", false, &got), CM_ENOTFOUND);
	assert_int_equal(qgen_store_get_set(pg, row.id, "user-1", true, &got), CM_OK);
	assert_string_equal(got.status, "queued");
	assert_null(got.questions);
	assert_string_equal(got.topic, "cells");
	assert_int_equal(qgen_store_get_set_by_job(pg, row.job_id, &got), CM_OK);
	assert_string_equal(got.id, row.id);

	assert_int_equal(qgen_store_set_progress(pg, row.id, 7), CM_OK); /* capped at count */
	assert_int_equal(qgen_store_get_set(pg, row.id, NULL, false, &got), CM_OK);
	assert_int_equal(got.progress, 2);
	assert_string_equal(got.status, "running");

	qgen_qlist_init(&l);
	make_question(&q, "What does {} mean in \"C\"?", 3);
	assert_int_equal(qgen_qlist_push(&l, &q), CM_OK);
	make_question(&q, "Which organelle makes ATP?", 9);
	assert_int_equal(qgen_qlist_push(&l, &q), CM_OK);
	assert_int_equal(qgen_pack_questions(&l, true, &blob, &len), CM_OK);

	/* The first finish wins; a second runner's finish changes nothing. */
	assert_int_equal(qgen_store_finish_set(pg, row.id, blob, len, &won), CM_OK);
	assert_true(won);
	assert_int_equal(qgen_store_finish_set(pg, row.id, blob, len, &won), CM_OK);
	assert_false(won);
	/* A finished set keeps its status. */
	assert_int_equal(qgen_store_set_status(pg, row.id, "failed", "late"), CM_OK);
	assert_int_equal(qgen_store_get_set(pg, row.id, "user-1", true, &got), CM_OK);
	assert_string_equal(got.status, "succeeded");
	assert_string_equal(got.error, "");
	assert_non_null(got.questions);
	qgen_qlist_init(&back);
	assert_int_equal(qgen_unpack_questions(got.questions, got.questions_len, &back), CM_OK);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.items[0].text, "What does {} mean in \"C\"?");
	assert_string_equal(back.items[0].options[3], "option 3 {x}");
	assert_string_equal(back.items[0].explanation, "because \"the text\" says so: \\ é");
	assert_int_equal(back.items[1].page, 9);
	assert_int_equal(back.items[1].answer, 1);
	assert_int_equal(back.items[1].difficulty, QGEN_HARD);
	free(got.questions);
	free(blob);
	qgen_qlist_fini(&back);
	qgen_qlist_fini(&l);
}

static cm_err
count_batch(void *arg, int idx, const uint8_t *blob, size_t len)
{
	int       *seen = arg;
	qgen_qlist l;

	qgen_qlist_init(&l);
	assert_int_equal(qgen_unpack_questions(blob, len, &l), CM_OK);
	assert_int_equal(l.n, 1);
	seen[idx]++;
	qgen_qlist_fini(&l);
	return CM_OK;
}

static void
test_batches_idempotent(void **state)
{
	char          job[37];
	qgen_qlist    l;
	qgen_question q;
	uint8_t      *blob;
	size_t        len;
	int           seen[4] = {0};

	(void)state;
	cm_uuid_v4(job);
	qgen_qlist_init(&l);
	make_question(&q, "A question kept in a batch?", 1);
	assert_int_equal(qgen_qlist_push(&l, &q), CM_OK);
	assert_int_equal(qgen_pack_questions(&l, false, &blob, &len), CM_OK);
	assert_int_equal(qgen_store_put_batch(pg, job, 0, blob, len), CM_OK);
	assert_int_equal(qgen_store_put_batch(pg, job, 2, blob, len), CM_OK);
	assert_int_equal(qgen_store_put_batch(pg, job, 0, blob, len), CM_OK); /* a replay */
	assert_int_equal(qgen_store_batches(pg, job, count_batch, seen), CM_OK);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 0);
	assert_int_equal(seen[2], 1);
	assert_int_equal(qgen_store_drop_batches(pg, job), CM_OK);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(qgen_store_batches(pg, job, count_batch, seen), CM_OK);
	assert_int_equal(seen[0] + seen[2], 0);
	free(blob);
	qgen_qlist_fini(&l);
}

/* A job and its set for owner; the set's row in *row. */
static void
new_job(cm_jobs *jobs, qgen_set_row *row, const char *owner)
{
	char job[37];

	assert_int_equal(cm_jobs_create(jobs, "qgen", owner, NULL, 0, 1, job), CM_OK);
	new_set(row, owner);
	snprintf(row->job_id, sizeof(row->job_id), "%s", job);
	assert_int_equal(qgen_store_insert_set(pg, row), CM_OK);
}

static void
assert_state(cm_jobs *jobs, const qgen_set_row *row, cm_job_status job, const char *set,
             const char *error)
{
	cm_jobs_info info;
	qgen_set_row got;

	assert_int_equal(cm_jobs_get(jobs, row->job_id, NULL, &info), CM_OK);
	assert_int_equal(info.status, job);
	assert_int_equal(qgen_store_get_set(pg, row->id, NULL, false, &got), CM_OK);
	assert_string_equal(got.status, set);
	assert_string_equal(got.error, error);
}

/* Cancelling or failing a job changes its set in the same transaction: both or neither. */
static void
test_job_and_set_end_together(void **state)
{
	cm_jobs_options o = {.channel = "qgen_t_jobs", .max_attempts = 2};
	cm_jobs        *jobs;
	cm_jobs_task    t;
	qgen_set_row    a, b, c, got;
	int             n = 0;
	bool            gave_up;

	(void)state;
	assert_int_equal(cm_jobs_open(&jobs, pg, &o), CM_OK);
	new_job(jobs, &a, "user-1");
	assert_int_equal(qgen_store_cancel_job(jobs, a.job_id, "user-2", "x", &got), CM_ENOTFOUND);
	assert_state(jobs, &a, CM_JOB_QUEUED, "queued", "");
	assert_int_equal(
	    qgen_store_cancel_job(jobs, a.job_id, "user-1", "cancelled by the user", &got), CM_OK);
	assert_string_equal(got.id, a.id); /* the set, as it was before the cancel */
	assert_int_equal(got.count, 2);
	assert_state(jobs, &a, CM_JOB_CANCELLED, "cancelled", "cancelled by the user");
	assert_int_equal(qgen_store_cancel_job(jobs, a.job_id, "user-1", "again", NULL), CM_OK);

	/* The set's update fails (a trigger refuses it): the job is not cancelled either. */
	assert_int_equal(cm_pg_exec(pg,
	                            "CREATE FUNCTION refuse() RETURNS trigger AS"
	                            " 'BEGIN RAISE EXCEPTION ''refused''; END' LANGUAGE plpgsql",
	                            0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(
	    cm_pg_exec(pg,
	               "CREATE TRIGGER refuse BEFORE UPDATE ON question_sets FOR EACH"
	               " ROW WHEN (NEW.error = 'refuse me') EXECUTE PROCEDURE refuse()",
	               0, NULL, NULL),
	    CM_OK);
	new_job(jobs, &b, "user-1");
	assert_int_not_equal(qgen_store_cancel_job(jobs, b.job_id, "user-1", "refuse me", NULL),
	                     CM_OK);
	assert_state(jobs, &b, CM_JOB_QUEUED, "queued", "");

	/* Failing for good fails the set with the job; a refused set update keeps the job
	 * running; a failure that will be retried leaves the set alone. */
	assert_int_equal(cm_jobs_claim(jobs, &t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t.job_id, b.job_id);
	cm_jobs_tasks_fini(&t, n);
	assert_int_not_equal(qgen_store_fail_job(jobs, b.job_id, b.id, "refuse me", true, &gave_up),
	                     CM_OK);
	assert_false(gave_up);
	assert_state(jobs, &b, CM_JOB_RUNNING, "queued", "");
	assert_int_equal(qgen_store_fail_job(jobs, b.job_id, b.id, "the document no longer exists",
	                                     true, &gave_up),
	                 CM_OK);
	assert_true(gave_up);
	assert_state(jobs, &b, CM_JOB_FAILED, "failed", "the document no longer exists");
	new_job(jobs, &c, "user-1");
	assert_int_equal(cm_jobs_claim(jobs, &t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	cm_jobs_tasks_fini(&t, n);
	assert_int_equal(qgen_store_fail_job(jobs, c.job_id, c.id, "svc-pdf down", false, &gave_up),
	                 CM_OK);
	assert_false(gave_up);
	assert_state(jobs, &c, CM_JOB_RUNNING, "queued", "");

	assert_int_equal(cm_pg_exec(pg, "DROP TRIGGER refuse ON question_sets", 0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(cm_pg_exec(pg, "DROP FUNCTION refuse()", 0, NULL, NULL), CM_OK);
	cm_jobs_close(jobs);
}

static void
test_unpack_rejects_garbage(void **state)
{
	qgen_qlist    l;
	const uint8_t junk[] = {0x0a, 0x05, 0x12, 0x03, 'x', 'y'};

	(void)state;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_unpack_questions(junk, sizeof(junk), &l), CM_EPROTO);
	assert_int_equal(l.n, 0);
	qgen_qlist_fini(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_lifecycle),
	    cmocka_unit_test(test_batches_idempotent),
	    cmocka_unit_test(test_job_and_set_end_together),
	    cmocka_unit_test(test_unpack_rejects_garbage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
