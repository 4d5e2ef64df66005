/*
 * services.c - svc-pdf and two svc-qgen's in the report's process (services.h).
 *
 * DESIGN. The same assembly as test/integration/test_qgen_offline.c (worker_helper.h builds the
 * workers), so the report measures what a user gets through the real handlers and runner, with
 * svc-qgen's configuration read as the service reads it (QGEN_* from the environment over the
 * defaults). Two departures, both to measure the generator and not the plumbing: no set cache
 * (QGEN_CACHE_TTL_S 0: an earlier run's set would hide a change), and runs happen on this thread
 * (qgen_runner_run_one) so the report needs no runner threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/config.h"
#include "cm/log.h"
#include "cm/service.h"
#include "cm/util.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/server.h"
#include "../../svc-qgen/config.h"
#include "../../svc-qgen/handlers.h"
#include "../../svc-qgen/server.h"
#include "../../test/integration/worker_helper.h"
#include "proto/pdf.pb-c.h"
#include "services.h"

#define QR_JOB_DEADLINE_MS 120000

typedef struct qr_provider {
	const char      *name;
	bool             on;
	qgen_service     svc;
	qgen_worker     *w;
	cm_service_conns conns;
	cm_metrics      *metrics;
	char             schema[48];
} qr_provider;

struct qr_services {
	char        dir[64]; /* the pdf data and the ipc socket */
	char        pdf_url[128];
	const char *db_url;
	cm_service *pdf;
	pdf_worker *pw;
	cm_pg      *pw_pg;
	cm_redis   *pw_redis;
	char        user[48];
	qr_provider p[QR_PROVIDERS];
};

static cm_err
invoke(cm_arena *arena, void *w, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	cm_rpc_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.method = "quality";
	ctx.request_id = "";
	ctx.subject = subject;
	ctx.session_id = "";
	ctx.client_addr = "";
	ctx.deadline_ms = cm_now_ms() + 60000;
	ctx.worker_state = w;
	ctx.arena = arena;
	*resp = cm_arena_alloc(arena, d->sizeof_message);
	d->message_init(*resp);
	return fn(&ctx, req, *resp);
}

static int
provider_start(qr_services *s, qr_provider *p, const char *fake_url)
{
	qgen_config       qc;
	cm_service_config common;
	cm_jobs_options   jo;
	cm_cfg_entry      table[64];
	size_t            nt = qgen_config_table(&qc, table, 64);
	cm_migration      migs[16];
	size_t            nm = qgen_migrations_all(migs, 16);
	cm_pg            *pg = NULL;
	void             *st = NULL;
	char              errbuf[256], r[4], hex[9];
	int64_t           port = 0;

	if (fake_url != NULL) {
		setenv("LLM_BASE_URL", fake_url, 1);
		setenv("LLM_MODEL", "fake", 1);
	} else {
		unsetenv("LLM_BASE_URL");
		unsetenv("LLM_PROVIDERS");
	}
	memset(&qc, 0, sizeof(qc));
	if (cm_config_load(table, nt, errbuf, sizeof(errbuf)) != CM_OK) {
		fprintf(stderr, "quality: svc-qgen config: %s\n", errbuf);
		return -1;
	}
	qc.events_url = "";
	qc.pdf_urls = s->pdf_url;
	qc.runners = 1;
	qc.cache_ttl_s = 0;
	qc.poll_ms = 100;
	qc.user_max_sets = 0;
	qc.user_max_questions = 0;
	memset(&common, 0, sizeof(common));
	common.log_level = "warn";
	common.database_url = s->db_url;
	common.redis_host = "127.0.0.1";
	(void)cm_parse_i64(getenv("REDIS_PORT"), &port);
	common.redis_port = port;
	common.rpc_url = "";
	common.admin_addr = "";
	common.workers = 1;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), hex);
	snprintf(p->schema, sizeof(p->schema), "qgen_quality_%s", hex);
	if (cm_pg_open(&pg, s->db_url, p->schema) != CM_OK ||
	    cm_pg_migrate_up(pg, p->schema, migs, nm) != CM_OK) {
		fprintf(stderr, "quality: cannot create schema %s\n", p->schema);
		cm_pg_close(pg);
		return -1;
	}
	cm_pg_close(pg);
	if ((p->metrics = cm_metrics_alloc("qgen_")) == NULL ||
	    qgen_service_init(&p->svc, &common, p->schema, &qc, p->metrics) != CM_OK) {
		fprintf(stderr, "quality: svc-qgen (%s) did not start\n", p->name);
		return -1;
	}
	p->on = true;
	if ((p->svc.llm != NULL) != (fake_url != NULL)) {
		fprintf(stderr, "quality: svc-qgen (%s) has the wrong provider\n", p->name);
		return -1;
	}
	qgen_jobs_options(&p->svc, &jo);
	if (test_worker_open(&common, p->schema, &jo, qgen_worker_init, &p->svc, &p->conns, &st) !=
	    CM_OK) {
		fprintf(stderr, "quality: svc-qgen (%s) worker\n", p->name);
		return -1;
	}
	p->w = st;
	return 0;
}

static void
provider_stop(qr_services *s, qr_provider *p)
{
	cm_pg       *pg = NULL;
	cm_migration migs[16];
	size_t       nm = qgen_migrations_all(migs, 16);

	if (!p->on)
		return;
	test_worker_close(qgen_worker_fini, &p->svc, p->w, &p->conns);
	qgen_service_fini(&p->svc);
	cm_metrics_free(p->metrics);
	if (cm_pg_open(&pg, s->db_url, p->schema) != CM_OK ||
	    cm_pg_migrate_down(pg, p->schema, migs, nm, 0) != CM_OK)
		fprintf(stderr, "quality: schema %s left behind\n", p->schema);
	cm_pg_close(pg);
	p->on = false;
}

int
qr_services_start(qr_services **out, const char *db_url, int redis_port, const char *fake_url)
{
	qr_services *s = calloc(1, sizeof(*s));
	pdf_service *papp = NULL;
	char         port[16], r[8], hex[17];

	*out = s;
	if (s == NULL)
		return -1;
	s->db_url = db_url;
	s->p[0].name = "offline";
	s->p[1].name = "fake LLM";
	snprintf(s->dir, sizeof(s->dir), "/tmp/quality-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		return -1;
	}
	snprintf(s->pdf_url, sizeof(s->pdf_url), "ipc://%s/pdf.ipc", s->dir);
	snprintf(port, sizeof(port), "%d", redis_port);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db_url, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", port, 1);
	setenv("PDF_RPC_URL", s->pdf_url, 1);
	setenv("PDF_ADMIN_ADDR", "127.0.0.1:0", 1);
	setenv("PDF_WORKERS", "2", 1);
	setenv("PDF_DATA_DIR", s->dir, 1);
	if (cm_service_start(&pdf_service_def, &s->pdf, (void **)&papp) != CM_OK ||
	    cm_pg_open(&s->pw_pg, db_url, PDF_SCHEMA) != CM_OK ||
	    cm_redis_open(&s->pw_redis, "", 0, CM_REDIS_TIMEOUT_MS) != CM_OK ||
	    pdf_worker_alloc(papp, s->pw_pg, s->pw_redis, &s->pw) != CM_OK) {
		fprintf(stderr, "quality: svc-pdf did not start\n");
		return -1;
	}
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), hex);
	snprintf(s->user, sizeof(s->user), "quality-%s", hex);
	if (provider_start(s, &s->p[0], NULL) != 0)
		return -1;
	if (fake_url != NULL && fake_url[0] != '\0' && provider_start(s, &s->p[1], fake_url) != 0)
		return -1;
	return 0;
}

void
qr_services_stop(qr_services *s)
{
	char cmd[128];

	if (s == NULL)
		return;
	for (int i = QR_PROVIDERS - 1; i >= 0; i--)
		provider_stop(s, &s->p[i]);
	if (s->pw != NULL)
		pdf_worker_free(s->pw);
	cm_redis_close(s->pw_redis);
	cm_pg_close(s->pw_pg);
	if (s->pdf != NULL)
		cm_service_stop(s->pdf);
	if (s->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "quality: %s left behind\n", s->dir);
	}
	free(s);
}

const char *
qr_provider_name(const qr_services *s, int i)
{
	return i >= 0 && i < QR_PROVIDERS && s->p[i].on ? s->p[i].name : NULL;
}

int
qr_upload(qr_services *s, const char *filename, const void *pdf, size_t len, char doc[40],
          char ***pages, int *npages)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	cm_arena             a;
	cm_err               err;
	int                  n = 0, rc = -1;

	*pages = NULL;
	*npages = 0;
	cm_arena_init(&a);
	rq.filename = (char *)filename;
	rq.content.data = (uint8_t *)pdf;
	rq.content.len = len;
	err = invoke(&a, s->pw, pdf_handle_upload, s->user, &rq, &pdf__upload_response__descriptor,
	             (void **)&rs);
	if (err != CM_OK) {
		fprintf(stderr, "quality: upload of %s: %s\n", filename, cm_strerror(err));
		goto out;
	}
	snprintf(doc, 40, "%s", rs->document->id);
	n = rs->document->pages;
	if ((*pages = calloc((size_t)n + 1, sizeof(**pages))) == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		Pdf__GetPageRequest pr = PDF__GET_PAGE_REQUEST__INIT;
		Pdf__Page          *pg = NULL;
		pr.id = doc;
		pr.page = i + 1;
		if ((err = invoke(&a, s->pw, pdf_handle_get_page, s->user, &pr,
		                  &pdf__page__descriptor, (void **)&pg)) != CM_OK) {
			fprintf(stderr, "quality: page %d of %s: %s\n", i + 1, filename,
			        cm_strerror(err));
			goto out;
		}
		if (((*pages)[i] = strdup(pg->text)) == NULL)
			goto out;
		*npages = i + 1;
	}
	rc = 0;
out:
	cm_arena_fini(&a);
	return rc;
}

/* Runs queued jobs on this thread until job has ended; false past the deadline. */
static bool
run_until_done(qr_provider *p, const char *job, char *why, size_t whylen)
{
	int64_t end = cm_mono_ms() + QR_JOB_DEADLINE_MS;

	while (cm_mono_ms() < end) {
		cm_jobs_info info;
		bool         ran = false;
		if (cm_jobs_get(p->w->jobs, job, NULL, &info) != CM_OK) {
			snprintf(why, whylen, "job %s cannot be read", job);
			return false;
		}
		if (info.status != CM_JOB_QUEUED && info.status != CM_JOB_RUNNING) {
			snprintf(why, whylen, "%s", info.error);
			return true;
		}
		if (qgen_runner_run_one(&p->svc, p->w, &ran) != CM_OK || !ran)
			usleep(50 * 1000);
	}
	snprintf(why, whylen, "job %s did not end in %d s", job, QR_JOB_DEADLINE_MS / 1000);
	return false;
}

void
qr_make_set(qr_services *s, int i, const char *doc, int count, bool mixed, qr_set *out)
{
	qr_provider          *p = &s->p[i];
	Qgen__CreateRequest   rq = QGEN__CREATE_REQUEST__INIT;
	Qgen__CreateResponse *rs = NULL;
	Qgen__GetSetRequest   gq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__QuestionSet    *qs = NULL;
	char                 *types[2] = {(char *)"mcq", (char *)"open"};
	char                  job[40], set[40];
	cm_err                err;

	cm_arena_init(&out->arena);
	out->qs = NULL;
	out->why[0] = '\0';
	rq.document_id = (char *)doc;
	rq.count = count;
	rq.types = types;
	rq.n_types = mixed ? 2 : 1;
	if ((err = invoke(&out->arena, p->w, qgen_handle_create, s->user, &rq,
	                  &qgen__create_response__descriptor, (void **)&rs)) != CM_OK) {
		snprintf(out->why, sizeof(out->why), "create: %s", cm_strerror(err));
		return;
	}
	snprintf(job, sizeof(job), "%s", rs->job_id);
	snprintf(set, sizeof(set), "%s", rs->question_set_id);
	if (!run_until_done(p, job, out->why, sizeof(out->why)))
		return;
	gq.id = set;
	gq.include_answers = true;
	if ((err = invoke(&out->arena, p->w, qgen_handle_get_set, s->user, &gq,
	                  &qgen__question_set__descriptor, (void **)&qs)) != CM_OK) {
		snprintf(out->why, sizeof(out->why), "get set: %s", cm_strerror(err));
		return;
	}
	if (strcmp(qs->status, "succeeded") != 0) {
		char job_why[sizeof(out->why)];
		snprintf(job_why, sizeof(job_why), "%s", out->why);
		snprintf(out->why, sizeof(out->why), "set %.12s: %.200s", qs->status,
		         job_why[0] != '\0' ? job_why : qs->error);
		return;
	}
	out->qs = qs;
}

void
qr_set_fini(qr_set *set)
{
	cm_arena_fini(&set->arena);
	set->qs = NULL;
}
