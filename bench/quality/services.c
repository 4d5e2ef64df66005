/*
 * services.c - svc-pdf and two svc-qgen's in the report's process (services.h).
 *
 * DESIGN. The same assembly as test/integration/test_qgen_offline.c, from the same header
 * (test/integration/qgen_harness.h: svc-pdf and svc-qgen with its worker), so the report
 * measures what a user gets through the real handlers and runner, with svc-qgen's configuration
 * read as the service reads it (QGEN_* from the environment over the defaults). Two departures,
 * both to measure the generator and not the plumbing: no set cache (QGEN_CACHE_TTL_S 0: an
 * earlier run's set would hide a change), and runs happen on this thread
 * (test_qgen_run_until_done) so the report needs no runner threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/config.h"
#include "cm/log.h"
#include "cm/service.h"
#include "cm/util.h"
#include "../../svc-qgen/config.h"
#include "../../test/integration/qgen_harness.h"
#include "proto/pdf.pb-c.h"
#include "services.h"

#define QR_JOB_DEADLINE_MS 120000
#define QR_CALL_DEADLINE_MS 60000

typedef struct qr_provider {
	const char       *name;
	bool              on;
	test_qgen         q; /* the service, its worker and its schema */
	cm_service_config common;
} qr_provider;

struct qr_services {
	test_pdf    pdf; /* its data directory holds the ipc socket too */
	const char *db_url;
	char        user[48];
	qr_provider p[QR_PROVIDERS];
};

static int
provider_start(qr_services *s, qr_provider *p, const char *fake_url)
{
	qgen_config  qc;
	cm_cfg_entry table[64];
	size_t       nt = qgen_config_table(&qc, table, 64);
	char         errbuf[256], r[4], hex[9], schema[48];
	int64_t      port = 0;

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
	qc.pdf_urls = s->pdf.url;
	qc.runners = 1;
	qc.cache_ttl_s = 0;
	qc.poll_ms = 100;
	qc.user_max_sets = 0;
	qc.user_max_questions = 0;
	/* Every question asked is used: with spares (the service's default) the set keeps the first
	 * questions to arrive, so the report, a CI gate, would depend on timing. */
	qc.spare_pct = 0;
	(void)cm_parse_i64(getenv("REDIS_PORT"), &port);
	test_common_config(&p->common, s->db_url, port, "", "");
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), hex);
	snprintf(schema, sizeof(schema), "qgen_quality_%s", hex);
	p->on = true; /* from here on, provider_stop undoes what was made */
	if (test_qgen_start(&p->q, &p->common, schema, &qc) != CM_OK) {
		fprintf(stderr, "quality: svc-qgen (%s) did not start on schema %s\n", p->name,
		        schema);
		return -1;
	}
	if ((p->q.svc.llm != NULL) != (fake_url != NULL)) {
		fprintf(stderr, "quality: svc-qgen (%s) has the wrong provider\n", p->name);
		return -1;
	}
	return 0;
}

static void
provider_stop(qr_provider *p)
{
	if (!p->on)
		return;
	test_qgen_stop(&p->q);
	p->on = false;
}

int
qr_services_start(qr_services **out, const char *db_url, int redis_port, const char *fake_url)
{
	qr_services *s = calloc(1, sizeof(*s));
	char         port[16], r[8], hex[17];

	*out = s;
	if (s == NULL)
		return -1;
	s->db_url = db_url;
	s->p[0].name = "offline";
	s->p[1].name = "fake LLM";
	snprintf(port, sizeof(port), "%d", redis_port);
	if (test_pdf_start(&s->pdf, "/tmp/quality-XXXXXX", db_url, port, NULL, "127.0.0.1:0", 2) !=
	    CM_OK) {
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
	if (s == NULL)
		return;
	for (int i = QR_PROVIDERS - 1; i >= 0; i--)
		provider_stop(&s->p[i]);
	if (test_pdf_stop(&s->pdf) != 0)
		fprintf(stderr, "quality: svc-pdf's data left behind\n");
	free(s);
}

const char *
qr_provider_name(const qr_services *s, int i)
{
	return i >= 0 && i < QR_PROVIDERS && s->p[i].on ? s->p[i].name : NULL;
}

/* A handler call as the report's user, its response in arena. */
static cm_err
invoke(cm_arena *arena, void *w, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	cm_rpc_ctx ctx;

	return test_handle(arena, &ctx, QR_CALL_DEADLINE_MS, w, fn, subject, req, d, resp);
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
	err = invoke(&a, s->pdf.w, pdf_handle_upload, s->user, &rq,
	             &pdf__upload_response__descriptor, (void **)&rs);
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
		if ((err = invoke(&a, s->pdf.w, pdf_handle_get_page, s->user, &pr,
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

/* Runs queued jobs on this thread until job has ended; false when it could not be run to its
 * end. why: the job's error, or why it did not end. */
static bool
run_until_done(qr_provider *p, const char *job, char *why, size_t whylen)
{
	cm_jobs_info info;
	cm_err       err = test_qgen_run_until_done(&p->q, job, QR_JOB_DEADLINE_MS, &info);

	if (err == CM_OK)
		snprintf(why, whylen, "%s", info.error);
	else if (err == CM_ETIMEDOUT)
		snprintf(why, whylen, "job %s did not end in %d s", job, QR_JOB_DEADLINE_MS / 1000);
	else
		snprintf(why, whylen, "job %s: %s", job, cm_strerror(err));
	return err == CM_OK;
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
	if ((err = invoke(&out->arena, p->q.w, qgen_handle_create, s->user, &rq,
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
	if ((err = invoke(&out->arena, p->q.w, qgen_handle_get_set, s->user, &gq,
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
