/*
 * test_deletion_log.c - svc-pdf's deletion log and svc-qgen's cascade over it, on the real
 * PostgreSQL of the pgredis fixture: pdf.Delete records each deletion in commit order,
 * pdf.Deletions serves it to services only, and a follower (cm/follow.h) with svc-qgen's apply
 * deletes the document's sets, cancels their jobs and moves its cursor in one transaction: a
 * failed entry, an unreachable svc-pdf or a busy cursor moves nothing, and nothing is lost.
 * svc-pdf runs in-process behind a real RPC server; svc-qgen's tables are in a schema of this
 * run. The pdf schema is shared with other tests; its log is made anew at set-up (migration 002
 * down and up), and the tests look only at what they add.
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

#include "cm/arena.h"
#include "cm/follow.h"
#include "cm/jobs.h"
#include "cm/log.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/server.h"
#include "../../svc-pdf/testpdf.h"
#include "../../svc-qgen/cascade.h"
#include "../../svc-qgen/server.h"
#include "../../svc-qgen/store.h"

#define PDF_URL "tcp://127.0.0.1:27193"
#define PDF_ADMIN "127.0.0.1:29193"
#define DEAD_URL "tcp://127.0.0.1:27194" /* nothing listens here */

static pdf_service  pdf;
static pdf_worker  *W;
static cm_service  *pdf_srv;
static qgen_service qgen;
static cm_pg       *qpg; /* svc-qgen's schema of this run */
static cm_jobs     *jobs;
static char         datadir[64], schema[40], nonce[20];
static int          serial;

/* ---- helpers --------------------------------------------------------------------------------- */

typedef struct call {
	cm_arena   arena;
	cm_rpc_ctx ctx;
} call;

/* Calls an svc-pdf handler as subject (NULL: as a service, with role CM_ROLE_SERVICE). */
static cm_err
invoke(call *c, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	static char *roles[] = {(char *)CM_ROLE_SERVICE};

	cm_arena_init(&c->arena);
	memset(&c->ctx, 0, sizeof(c->ctx));
	c->ctx.method = "test";
	c->ctx.request_id = "";
	c->ctx.subject = subject != NULL ? subject : "";
	c->ctx.session_id = "";
	c->ctx.client_addr = "";
	if (subject == NULL) {
		c->ctx.roles = roles;
		c->ctx.n_roles = 1;
	}
	c->ctx.deadline_ms = cm_now_ms() + 30000;
	c->ctx.worker_state = W;
	c->ctx.arena = &c->arena;
	*resp = cm_arena_alloc(&c->arena, d->sizeof_message);
	assert_non_null(*resp);
	d->message_init(*resp);
	return fn(&c->ctx, req, *resp);
}

/* Uploads a small unique PDF as owner; its document id goes to id. */
static void
upload(const char *owner, char id[37])
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	pdf_testpdf          o;
	char                 text[160];
	const char          *pages[1] = {text};
	cm_buf               b;
	call                 c;

	snprintf(text, sizeof(text), "Deletion log %s document %d: some words to extract.", nonce,
	         ++serial);
	memset(&o, 0, sizeof(o));
	o.npages = 1;
	o.pages = pages;
	cm_buf_init(&b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, &b), CM_OK);
	rq.filename = (char *)"log.pdf";
	rq.content.data = (uint8_t *)b.data;
	rq.content.len = b.len;
	assert_int_equal(invoke(&c, pdf_handle_upload, owner, &rq,
	                        &pdf__upload_response__descriptor, (void **)&rs),
	                 CM_OK);
	snprintf(id, 37, "%s", rs->document->id);
	cm_arena_fini(&c.arena);
	cm_buf_fini(&b);
}

static cm_err
delete_doc(const char *owner, const char *id)
{
	Pdf__DeleteRequest rq = PDF__DELETE_REQUEST__INIT;
	void              *rs;
	call               c;
	cm_err             err;

	rq.id = (char *)id;
	err = invoke(&c, pdf_handle_delete, owner, &rq, &pdf__delete_response__descriptor, &rs);
	cm_arena_fini(&c.arena);
	return err;
}

/* The log after `after` (at most limit entries) into ids/owners/seqs; returns the count. */
static int
read_log(const char *subject, int64_t after, int limit, char ids[][37], char owners[][64],
         int64_t *seqs, cm_err *err)
{
	Cm__DeletionsRequest   rq = CM__DELETIONS_REQUEST__INIT;
	Cm__DeletionsResponse *rs = NULL;
	call                   c;
	int                    n = 0;

	rq.after_seq = after;
	rq.limit = limit;
	*err = invoke(&c, pdf_handle_deletions, subject, &rq, &cm__deletions_response__descriptor,
	              (void **)&rs);
	for (size_t i = 0; *err == CM_OK && i < rs->n_deletions; i++, n++) {
		if (ids != NULL)
			snprintf(ids[n], 37, "%s", rs->deletions[i]->id);
		if (owners != NULL)
			snprintf(owners[n], 64, "%s", rs->deletions[i]->owner);
		seqs[n] = rs->deletions[i]->seq;
	}
	cm_arena_fini(&c.arena);
	return n;
}

/* The newest seq in the log (0 when empty). */
static int64_t
log_head(void)
{
	int64_t seqs[CM_FOLLOW_BATCH_MAX], head = 0;
	cm_err  err;
	int     n;

	while ((n = read_log(NULL, head, CM_FOLLOW_BATCH_MAX, NULL, NULL, seqs, &err)) > 0)
		head = seqs[n - 1];
	assert_int_equal(err, CM_OK);
	return head;
}

/* A set row of owner for document doc, with a job made through j (whose connection pg is). */
static void
set_row(qgen_set_row *row, const char *owner, const char *doc)
{
	memset(row, 0, sizeof(*row));
	cm_uuid_v4(row->id);
	snprintf(row->owner, sizeof(row->owner), "%s", owner);
	snprintf(row->document_id, sizeof(row->document_id), "%s", doc);
	memset(row->sha256, 'b', 64);
	snprintf(row->status, sizeof(row->status), "queued");
	row->count = 3;
	snprintf(row->types, sizeof(row->types), "mcq");
	snprintf(row->difficulty, sizeof(row->difficulty), "easy");
}

/* A queued set of owner for document doc, with a job; the ids go to set_id / job_id. */
static void
new_set(const char *owner, const char *doc, char set_id[37], char job_id[37])
{
	qgen_set_row row;

	set_row(&row, owner, doc);
	assert_int_equal(cm_jobs_create(jobs, QGEN_JOB_KIND, owner, "p", 1, 1, row.job_id), CM_OK);
	assert_int_equal(qgen_store_insert_set(qpg, &row), CM_OK);
	snprintf(set_id, 37, "%s", row.id);
	snprintf(job_id, 37, "%s", row.job_id);
}

/* Polls until some backend of this database waits for a lock (at most 10 s). */
static void
wait_for_lock_wait(void)
{
	int64_t until = cm_mono_ms() + 10000;

	for (;;) {
		cm_pg_result *r = NULL;
		int64_t       n = 0;
		assert_int_equal(
		    cm_pg_exec(W->pg,
		               "SELECT count(*) FROM pg_stat_activity WHERE"
		               " datname = current_database() AND wait_event_type = 'Lock'",
		               0, NULL, &r),
		    CM_OK);
		assert_true(cm_parse_i64(cm_pg_get(r, 0, 0), &n));
		cm_pg_result_free(r);
		if (n > 0)
			return;
		assert_true(cm_mono_ms() < until);
		usleep(10000);
	}
}

static bool
set_exists(const char *id)
{
	qgen_set_row row;
	cm_err       err = qgen_store_get_set(qpg, id, NULL, false, &row);

	assert_true(err == CM_OK || err == CM_ENOTFOUND);
	return err == CM_OK;
}

static cm_job_status
job_status(const char *id)
{
	cm_jobs_info info;

	assert_int_equal(cm_jobs_get(jobs, id, NULL, &info), CM_OK);
	return info.status;
}

static int64_t
cursor(void)
{
	int64_t seq;

	assert_int_equal(cm_follow_cursor(qpg, CM_FOLLOW_PDF_SOURCE, &seq), CM_OK);
	return seq;
}

/* Rounds with cfg until one applies nothing; returns how many entries were applied. */
static int
catch_up(const cm_follower_config *cfg)
{
	int total = 0, n;

	do {
		assert_int_equal(cm_follow_round(cfg, qpg, &n), CM_OK);
		total += n;
	} while (n > 0);
	return total;
}

/* ---- fixture --------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	pdf_config      pcfg;
	cm_migration    migs[16];
	size_t          n = qgen_migrations_all(migs, 16);
	const char     *db = getenv("CM_TEST_PG"), *redis_port = getenv("CM_TEST_REDIS_PORT");
	cm_pg          *pg = NULL, *wpg = NULL;
	cm_redis       *wredis = NULL;
	char            id[37], r[8];
	cm_jobs_options jo = {.channel = QGEN_CHANNEL};

	(void)state;
	cm_log_init("deletion-log-test", CM_LOG_WARN);
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(datadir, sizeof(datadir), "/tmp/pdf-dlog-XXXXXX");
	if (db == NULL || mkdtemp(datadir) == NULL)
		return -1;
	/* The log made anew (migration 002 down and up): this run starts from a fresh log id. */
	if (cm_pg_open(&pg, db, PDF_SCHEMA) != CM_OK ||
	    cm_pg_migrate_up(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count) != CM_OK ||
	    cm_pg_migrate_down(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count, 1) != CM_OK ||
	    cm_pg_migrate_up(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count) != CM_OK) {
		fprintf(stderr, "pdf migrations failed: %s\n", pg != NULL ? cm_pg_errmsg(pg) : "");
		return -1;
	}
	cm_pg_close(pg);

	/* svc-pdf as its main.c runs it (the skeleton reads the environment), for the follower;
	 * and a worker of our own for calling its handlers directly. */
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", redis_port != NULL ? redis_port : "26379", 1);
	setenv("PDF_RPC_URL", PDF_URL, 1);
	setenv("PDF_ADMIN_ADDR", PDF_ADMIN, 1);
	setenv("PDF_WORKERS", "2", 1);
	setenv("PDF_DATA_DIR", datadir, 1);
	if (cm_service_start(&pdf_service_def, &pdf_srv, NULL) != CM_OK)
		return -1;
	pdf_config_defaults(&pcfg);
	pcfg.data_dir = datadir;
	if (pdf_service_init(&pdf, &pcfg, NULL) != CM_OK ||
	    cm_pg_open(&wpg, db, PDF_SCHEMA) != CM_OK ||
	    cm_redis_open(&wredis, "", 0, CM_REDIS_TIMEOUT_MS) != CM_OK ||
	    pdf_worker_alloc(&pdf, wpg, wredis, &W) != CM_OK)
		return -1;

	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "qgen_d_%.8s", id);
	memset(&qgen, 0, sizeof(qgen));
	qgen.common.database_url = db;
	qgen.schema = schema;
	if (cm_rpc_client_open(&qgen.pdf, "pdf", PDF_URL, NULL) != CM_OK ||
	    cm_pg_open(&qpg, db, schema) != CM_OK ||
	    cm_pg_migrate_up(qpg, schema, migs, n) != CM_OK ||
	    cm_jobs_open(&jobs, qpg, &jo) != CM_OK)
		return -1;
	for (int i = 0; i < 250 && cm_rpc_client_healthy(qgen.pdf) == 0; i++)
		usleep(20000);
	return cm_rpc_client_healthy(qgen.pdf) > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	cm_migration migs[16];
	size_t       n = qgen_migrations_all(migs, 16);
	cm_pg       *wpg = W->pg;
	cm_redis    *wredis = W->redis;
	char         cmd[128];
	int          rc = 0;

	(void)state;
	/* Every down part runs cleanly, the new ones included. */
	if (cm_pg_migrate_down(qpg, schema, migs, n, 0) != CM_OK)
		rc = -1;
	cm_jobs_close(jobs);
	cm_pg_close(qpg);
	cm_rpc_client_close(qgen.pdf);
	cm_service_stop(pdf_srv);
	pdf_worker_free(W);
	cm_redis_close(wredis);
	cm_pg_close(wpg);
	pdf_service_fini(&pdf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	if (system(cmd) != 0)
		rc = -1;
	return rc;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* Each deletion is logged once, in order, with its owner; only services may read the log. */
static void
test_log_records_deletions(void **state)
{
	char    a[37], b[37], ids[4][37], owners[4][64];
	int64_t head = log_head(), seqs[4];
	cm_err  err;

	(void)state;
	upload("log-owner-1", a);
	upload("log-owner-2", b);
	assert_int_equal(delete_doc("log-owner-1", a), CM_OK);
	/* Not found (gone already, or someone else's): nothing is logged. */
	assert_int_equal(delete_doc("log-owner-1", a), CM_ENOTFOUND);
	assert_int_equal(delete_doc("log-owner-1", b), CM_ENOTFOUND);
	assert_int_equal(delete_doc("log-owner-2", b), CM_OK);

	assert_int_equal(read_log(NULL, head, 0, ids, owners, seqs, &err), 2);
	assert_int_equal(err, CM_OK);
	assert_string_equal(ids[0], a);
	assert_string_equal(owners[0], "log-owner-1");
	assert_string_equal(ids[1], b);
	assert_string_equal(owners[1], "log-owner-2");
	assert_true(seqs[0] > head && seqs[1] > seqs[0]);
	/* Paging: limit and after_seq. */
	assert_int_equal(read_log(NULL, head, 1, ids, owners, seqs, &err), 1);
	assert_string_equal(ids[0], a);
	assert_int_equal(read_log(NULL, seqs[0], 5, ids, owners, seqs, &err), 1);
	assert_string_equal(ids[0], b);
	assert_int_equal(read_log(NULL, seqs[0], 5, ids, owners, seqs, &err), 0);

	/* A user (what the edge sends) may not read it; nor may a call without the service role. */
	assert_int_equal(read_log("log-owner-1", head, 0, ids, owners, seqs, &err), 0);
	assert_int_equal(err, CM_EPERM);
	{
		Cm__DeletionsRequest rq = CM__DELETIONS_REQUEST__INIT;
		void                *rs;
		call                 c;

		assert_int_equal(invoke(&c, pdf_handle_deletions, "", &rq,
		                        &cm__deletions_response__descriptor, &rs),
		                 CM_EPERM);
		cm_arena_fini(&c.arena);
	}
	/* Bad paging is refused. */
	assert_int_equal(read_log(NULL, -1, 0, ids, owners, seqs, &err), 0);
	assert_int_equal(err, CM_EINVAL);
	assert_int_equal(read_log(NULL, 0, CM_FOLLOW_BATCH_MAX + 1, ids, owners, seqs, &err), 0);
	assert_int_equal(err, CM_EINVAL);
}

/* The cascade: the deleted document's sets go and their jobs are cancelled, other sets stay,
 * the cursor ends at the newest entry, a set for the deleted document can no longer be made,
 * and a second pass changes nothing. */
static void
test_cascade_and_cursor(void **state)
{
	cm_follower_config cfg;
	char               doc[37], other[37], s1[37], j1[37], s2[37], j2[37], s3[37], j3[37];
	qgen_set_row       row;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg); /* older entries of the shared log */
	upload("cascade-owner", doc);
	upload("cascade-owner", other);
	new_set("cascade-owner", doc, s1, j1);
	new_set("cascade-owner", doc, s2, j2);
	new_set("cascade-owner", other, s3, j3);
	assert_int_equal(delete_doc("cascade-owner", doc), CM_OK);
	/* Nothing happens before the follower runs. */
	assert_true(set_exists(s1));

	assert_int_equal(catch_up(&cfg), 1);
	assert_false(set_exists(s1));
	assert_false(set_exists(s2));
	assert_int_equal(job_status(j1), CM_JOB_CANCELLED);
	assert_int_equal(job_status(j2), CM_JOB_CANCELLED);
	assert_true(set_exists(s3));
	assert_int_equal(job_status(j3), CM_JOB_QUEUED);
	assert_int_equal(cursor(), log_head());

	/* The deleted document is remembered: no new set can name it. */
	set_row(&row, "cascade-owner", doc);
	assert_int_equal(qgen_store_insert_set(qpg, &row), CM_ENOTFOUND);

	/* Again: nothing to apply, nothing moves; applying the entry twice is harmless. */
	assert_int_equal(catch_up(&cfg), 0);
	assert_int_equal(cursor(), log_head());
	assert_int_equal(cm_pg_begin(qpg), CM_OK);
	assert_int_equal(qgen_cascade_apply(&qgen, qpg, 1, doc, "cascade-owner"), CM_OK);
	assert_int_equal(cm_pg_commit(qpg), CM_OK);
	assert_true(set_exists(s3));
}

/* An entry that cannot be applied rolls back its whole round: the earlier entry's effects and
 * the cursor stay where they were; the next round applies both. */
static int fail_on_calls; /* apply fails when this many calls have been made; 0 = never */
static int apply_calls;
static cm_err
flaky_apply(void *arg, cm_pg *pg, int64_t seq, const char *id, const char *owner)
{
	if (fail_on_calls > 0 && ++apply_calls == fail_on_calls)
		return CM_EUNAVAIL;
	return qgen_cascade_apply(arg, pg, seq, id, owner);
}

static void
test_failed_entry_moves_nothing(void **state)
{
	cm_follower_config cfg;
	char               d1[37], d2[37], s1[37], j1[37], s2[37], j2[37];
	int64_t            before;
	int                n = -1;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	cfg.apply = flaky_apply;
	catch_up(&cfg);
	before = cursor();
	upload("flaky-owner", d1);
	upload("flaky-owner", d2);
	new_set("flaky-owner", d1, s1, j1);
	new_set("flaky-owner", d2, s2, j2);
	assert_int_equal(delete_doc("flaky-owner", d1), CM_OK);
	assert_int_equal(delete_doc("flaky-owner", d2), CM_OK);

	apply_calls = 0;
	fail_on_calls = 2; /* d1 applies, d2 fails */
	assert_int_equal(cm_follow_round(&cfg, qpg, &n), CM_EUNAVAIL);
	assert_int_equal(n, 0);
	assert_int_equal(cursor(), before);
	assert_true(set_exists(s1)); /* d1's deletion was rolled back with the round */
	assert_int_equal(job_status(j1), CM_JOB_QUEUED);
	assert_true(set_exists(s2));

	fail_on_calls = 0;
	assert_int_equal(catch_up(&cfg), 2);
	assert_false(set_exists(s1));
	assert_false(set_exists(s2));
	assert_int_equal(job_status(j1), CM_JOB_CANCELLED);
	assert_int_equal(cursor(), log_head());
}

/* svc-pdf unreachable: the round fails and moves nothing; once it answers, nothing was lost. */
static void
test_producer_unreachable(void **state)
{
	cm_follower_config cfg;
	cm_rpc_client     *dead = NULL;
	char               doc[37], s1[37], j1[37];
	int64_t            before;
	int                n = -1;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg);
	before = cursor();
	upload("away-owner", doc);
	new_set("away-owner", doc, s1, j1);
	assert_int_equal(delete_doc("away-owner", doc), CM_OK);

	assert_int_equal(cm_rpc_client_open(&dead, "pdf", DEAD_URL, NULL), CM_OK);
	cfg.client = dead;
	cfg.rpc_timeout_ms = 300;
	assert_int_not_equal(cm_follow_round(&cfg, qpg, &n), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(cursor(), before);
	assert_true(set_exists(s1));
	cm_rpc_client_close(dead);

	qgen_cascade_config(&qgen, &cfg);
	assert_int_equal(catch_up(&cfg), 1);
	assert_false(set_exists(s1));
}

/* Two replicas: while one holds the cursor, the other's round applies nothing and fails
 * nothing; afterwards it applies what is left. */
static void
test_busy_cursor_is_skipped(void **state)
{
	cm_follower_config cfg;
	cm_pg             *other = NULL;
	const char        *p[1] = {CM_FOLLOW_PDF_SOURCE};
	char               doc[37], s1[37], j1[37];
	int                n = -1;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg);
	upload("busy-owner", doc);
	new_set("busy-owner", doc, s1, j1);
	assert_int_equal(delete_doc("busy-owner", doc), CM_OK);

	assert_int_equal(cm_pg_open(&other, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_int_equal(cm_pg_begin(other), CM_OK);
	assert_int_equal(cm_pg_exec(other,
	                            "SELECT 1 FROM follow_cursors WHERE source = $1 FOR UPDATE", 1,
	                            p, NULL),
	                 CM_OK);
	assert_int_equal(cm_follow_round(&cfg, qpg, &n), CM_OK);
	assert_int_equal(n, 0);
	assert_true(set_exists(s1));
	cm_pg_rollback(other);
	cm_pg_close(other);

	assert_int_equal(catch_up(&cfg), 1);
	assert_false(set_exists(s1));
}

/* A Create racing the cascade (it read the document from svc-pdf just before the deletion):
 * committed first, its set is deleted with the rest; second, it is refused. Never left behind. */
typedef struct race {
	const cm_follower_config *cfg;
	cm_pg                    *pg;
	qgen_set_row             *row;
	int                       applied;
	cm_err                    err;
} race;

static void *
race_round(void *arg)
{
	race *r = arg;

	r->err = cm_follow_round(r->cfg, r->pg, &r->applied);
	return NULL;
}

static void *
race_insert(void *arg)
{
	race *r = arg;

	r->err = qgen_store_insert_set(r->pg, r->row);
	return NULL;
}

static void
test_create_racing_the_cascade(void **state)
{
	cm_follower_config cfg;
	cm_pg             *other = NULL;
	qgen_set_row       row;
	char               doc[37];
	pthread_t          t;
	race               r;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg);
	assert_int_equal(cm_pg_open(&other, getenv("CM_TEST_PG"), schema), CM_OK);

	/* The Create's transaction holds its insert when the deletion is applied. */
	upload("race-owner", doc);
	set_row(&row, "race-owner", doc);
	assert_int_equal(cm_pg_begin(other), CM_OK);
	assert_int_equal(qgen_store_insert_set(other, &row), CM_OK);
	assert_int_equal(delete_doc("race-owner", doc), CM_OK);
	r = (race){&cfg, qpg, NULL, -1, CM_EINTERNAL};
	assert_int_equal(pthread_create(&t, NULL, race_round, &r), 0);
	wait_for_lock_wait(); /* the round waits for the Create */
	assert_int_equal(cm_pg_commit(other), CM_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.err, CM_OK);
	assert_int_equal(r.applied, 1);
	assert_false(set_exists(row.id));

	/* The deletion is being applied when the Create inserts: refused. */
	upload("race-owner", doc);
	assert_int_equal(delete_doc("race-owner", doc), CM_OK);
	assert_int_equal(cm_pg_begin(qpg), CM_OK);
	assert_int_equal(qgen_cascade_apply(&qgen, qpg, 1, doc, "race-owner"), CM_OK);
	set_row(&row, "race-owner", doc);
	r = (race){&cfg, other, &row, 0, CM_EINTERNAL};
	assert_int_equal(pthread_create(&t, NULL, race_insert, &r), 0);
	wait_for_lock_wait(); /* the insert waits for the cascade */
	assert_int_equal(cm_pg_commit(qpg), CM_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.err, CM_ENOTFOUND);
	assert_false(set_exists(row.id));
	cm_pg_close(other);
	catch_up(&cfg);
}

/* The producer's log made anew (its seq starts over, with another log id): the follower starts
 * over instead of waiting for the new seq to pass its old cursor. */
static void
test_log_made_anew(void **state)
{
	cm_follower_config cfg;
	char               doc[37], s1[37], j1[37];

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg);
	assert_true(cursor() > 1);
	/* What dropping and re-creating the log amounts to, on the shared pdf schema. */
	assert_int_equal(cm_pg_exec(W->pg, "DELETE FROM deletions", 0, NULL, NULL), CM_OK);
	assert_int_equal(cm_pg_exec(W->pg,
	                            "SELECT setval(pg_get_serial_sequence('deletions', 'seq'), 1,"
	                            " false)",
	                            0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(
	    cm_pg_exec(W->pg, "UPDATE deletions_log SET id = gen_random_uuid()", 0, NULL, NULL),
	    CM_OK);
	upload("anew-owner", doc);
	new_set("anew-owner", doc, s1, j1);
	assert_int_equal(delete_doc("anew-owner", doc), CM_OK);
	assert_int_equal(log_head(), 1);

	assert_int_equal(catch_up(&cfg), 1);
	assert_false(set_exists(s1));
	assert_int_equal(cursor(), 1);
}

/* The follower's own thread: a deletion is applied within a few poll intervals, sooner when
 * woken; stop joins it. */
static void
test_follower_thread(void **state)
{
	cm_follower_config cfg;
	cm_follower       *f = NULL;
	char               doc[37], s1[37], j1[37];
	int64_t            until;

	(void)state;
	qgen_cascade_config(&qgen, &cfg);
	catch_up(&cfg);
	upload("thread-owner", doc);
	new_set("thread-owner", doc, s1, j1);
	assert_int_equal(qgen_cascade_start(&qgen, &f), CM_OK);
	assert_int_equal(delete_doc("thread-owner", doc), CM_OK);
	cm_follower_wake(f);
	until = cm_mono_ms() + 10 * CM_FOLLOW_PDF_POLL_MS;
	while (set_exists(s1) && cm_mono_ms() < until)
		usleep(20000);
	assert_false(set_exists(s1));
	assert_int_equal(job_status(j1), CM_JOB_CANCELLED);
	qgen_cascade_stop(f);
	assert_int_equal(cursor(), log_head());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_records_deletions),
	    cmocka_unit_test(test_cascade_and_cursor),
	    cmocka_unit_test(test_failed_entry_moves_nothing),
	    cmocka_unit_test(test_producer_unreachable),
	    cmocka_unit_test(test_busy_cursor_is_skipped),
	    cmocka_unit_test(test_create_racing_the_cascade),
	    cmocka_unit_test(test_log_made_anew),
	    cmocka_unit_test(test_follower_thread),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
