/*
 * server.c - svc-qgen's definition for the service skeleton: method table, service and
 * per-thread state, migrations, background runners, readiness.
 *
 * DESIGN: every thread that touches PostgreSQL or Redis has connections of its own (a
 * qgen_worker: the skeleton's for RPC workers, its own for runner threads); the LLM client, the
 * svc-pdf client and the publisher are thread-safe and shared. A worker that cannot be built
 * stops start-up (cm/service.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "proto/qgen.pb-c.h"
#include "cascade.h"
#include "handlers.h"
#include "server.h"

#define REJECTED_HELP                                                                              \
	"questions dropped: invalid, ungrounded (the cited page lacks the answer) or "             \
	"ambiguous_distractor (a distractor is as supported as the answer)"

extern const cm_migration qgen_migrations[];
extern const size_t       qgen_migrations_count;

const cm_rpc_method qgen_methods[] = {
    {"qgen.Create", &qgen__create_request__descriptor, &qgen__create_response__descriptor,
     qgen_handle_create, NULL},
    {"qgen.GetJob", &qgen__job_ref__descriptor, &qgen__job__descriptor, qgen_handle_get_job, NULL},
    {"qgen.CancelJob", &qgen__job_ref__descriptor, &qgen__job__descriptor, qgen_handle_cancel_job,
     NULL},
    {"qgen.GetSet", &qgen__get_set_request__descriptor, &qgen__question_set__descriptor,
     qgen_handle_get_set, NULL},
    {"qgen.Export", &qgen__export_request__descriptor, &qgen__export_response__descriptor,
     qgen_handle_export, NULL},
};
const size_t qgen_n_methods = sizeof(qgen_methods) / sizeof(qgen_methods[0]);

size_t
qgen_migrations_all(cm_migration *out, size_t cap)
{
	return cm_service_migrations(&qgen_service_def, out, cap);
}

cm_err
qgen_service_init(qgen_service *s, const cm_service_config *common, const char *schema,
                  const qgen_config *cfg, cm_metrics *m)
{
	char   errbuf[256];
	cm_err err;

	memset(s, 0, sizeof(*s));
	s->common = *common;
	s->schema = schema;
	s->cfg = *cfg;
	s->ground.min_overlap = (double)cfg->ground_min_overlap / 100.0;
	s->ground.window = (int)cfg->ground_window;
	s->ground.ambiguity = cfg->ground_ambiguous;
	s->metrics = m;
	err = cm_llm_alloc_env(&s->llm, common->redis_host, (int)common->redis_port, m, errbuf,
	                       sizeof(errbuf));
	if (err == CM_ENOTFOUND) {
		s->llm = NULL;
		cm_info("QGEN-OFFLINE", "LLM_BASE_URL is not set: questions come from the offline "
		                        "extractive provider");
	} else if (err != CM_OK) {
		cm_error("QGEN-LLM-CONFIG", "LLM configuration: %s", errbuf);
		return err;
	}
	if ((err = cm_rpc_client_open(&s->pdf, "pdf", cfg->pdf_urls, m)) != CM_OK) {
		cm_error("QGEN-PDF-URLS", "bad QGEN_PDF_URLS: %s", cfg->pdf_urls);
		goto fail;
	}
	if (cfg->events_url[0] != '\0' && (err = cm_pub_open(&s->pub, cfg->events_url)) != CM_OK) {
		cm_error("QGEN-EVENTS", "cannot publish events on %s", cfg->events_url);
		goto fail;
	}
	s->sets_created =
	    cm_metrics_counter(m, "sets_requested_total", "question sets requested", NULL);
	s->quota_refused = cm_metrics_counter(m, "quota_refused_total",
	                                      "sets refused by the per-user quotas", NULL);
	s->cache_hits =
	    cm_metrics_counter(m, "cache_hits_total", "sets answered from the cache", NULL);
	s->rejected_invalid =
	    cm_metrics_counter(m, "questions_rejected_total", REJECTED_HELP, "reason=\"invalid\"");
	for (int v = QGEN_UNGROUNDED; v < QGEN_GROUND_NVERDICTS; v++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "reason=\"%s\"", qgen_ground_verdict_name(v));
		s->rejected[v] =
		    cm_metrics_counter(m, "questions_rejected_total", REJECTED_HELP, labels);
	}
	s->batches_failed = cm_metrics_counter(m, "batches_failed_total",
	                                       "generation calls that gave nothing", NULL);
	s->llm_calls =
	    cm_metrics_counter(m, "generation_calls_total", "generation calls made", NULL);
	s->hedged_calls = cm_metrics_counter(m, "hedged_calls_total",
	                                     "duplicates started for late generation calls", NULL);
	s->extra_tokens = cm_metrics_counter(
	    m, "extra_tokens_total",
	    "tokens the sets did not use: calls a duplicate beat, spare calls, streams cut off "
	    "when the set was full",
	    NULL);
	s->streams_cut = cm_metrics_counter(
	    m, "streams_cancelled_total",
	    "streamed generation calls cancelled after their answer had begun", NULL);
	s->jobs_succeeded = cm_metrics_counter(m, "jobs_succeeded_total", "sets generated", NULL);
	s->jobs_failed = cm_metrics_counter(m, "jobs_failed_total", "sets that failed", NULL);
	s->job_seconds =
	    cm_metrics_histogram(m, "job_duration_seconds", "time to generate a set", NULL);
	return CM_OK;
fail:
	qgen_service_fini(s);
	return err;
}

void
qgen_service_fini(qgen_service *s)
{
	cm_pub_close(s->pub);
	s->pub = NULL;
	cm_rpc_client_close(s->pdf);
	s->pdf = NULL;
	cm_llm_free(s->llm);
	s->llm = NULL;
}

void
qgen_jobs_options(const qgen_service *s, cm_jobs_options *jo)
{
	memset(jo, 0, sizeof(*jo));
	jo->channel = QGEN_CHANNEL;
	jo->lease_ms = (int)s->cfg.lease_ms;
	jo->max_attempts = 5;
	/* Owners take turns (cm/jobs.h): one user's backlog does not starve another's set. The
	 * per-user quota (handlers.c) keeps the queue short enough for its per-claim ranking. */
	jo->fair = true;
}

cm_err
qgen_worker_init(void *app, const cm_service_conns *conns, void **state)
{
	qgen_worker *w = calloc(1, sizeof(*w));

	*state = w;
	if (w == NULL)
		return CM_ENOMEM;
	w->svc = app;
	w->pg = conns->pg;
	w->redis = conns->redis;
	w->jobs = conns->jobs;
	return CM_OK;
}

void
qgen_worker_fini(void *app, void *state)
{
	(void)app;
	free(state);
}

/* ---- the skeleton's hooks -------------------------------------------------------------------- */

static cm_err
app_init(const cm_service_env *env, void *app)
{
	return qgen_service_init(app, env->common, env->schema, env->config, env->metrics);
}

static void
app_fini(void *app)
{
	qgen_service_fini(app);
}

static void
jobs_options(const void *app, cm_jobs_options *jo)
{
	qgen_jobs_options(app, jo);
}

/* Background work: the job runners, and the follower of svc-pdf's deletion log (cascade.h). */
static cm_err
start(void *app)
{
	qgen_service *s = app;
	cm_err        err;

	if ((err = qgen_runners_start(s)) != CM_OK)
		return err;
	if ((err = qgen_cascade_start(s, &s->cascade)) != CM_OK)
		qgen_runners_stop(s);
	return err;
}

static void
stop(void *app)
{
	qgen_service *s = app;

	qgen_cascade_stop(s->cascade);
	s->cascade = NULL;
	qgen_runners_stop(s);
}

/* Beyond PostgreSQL (the skeleton's check): a set needs svc-pdf's chunks. */
static bool
ready(void *app, char *why, size_t whylen)
{
	qgen_service *s = app;

	if (cm_rpc_client_healthy(s->pdf) == 0) {
		snprintf(why, whylen, "no svc-pdf replica reachable");
		return false;
	}
	return true;
}

const cm_service_def qgen_service_def = {
    .name = "qgen",
    .schema = QGEN_SCHEMA,
    .rpc_url_default = "tcp://127.0.0.1:7104",
    .admin_addr_default = "127.0.0.1:9104",
    .workers_default = "4",
    .config_size = sizeof(qgen_config),
    .config_table = qgen_config_table,
    .migrations = qgen_migrations,
    .n_migrations = &qgen_migrations_count,
    .jobs_version = 2, /* after 001_init; file migrations are numbered from 003 on */
    .methods = qgen_methods,
    .n_methods = &qgen_n_methods,
    .app_size = sizeof(qgen_service),
    .app_init = app_init,
    .app_fini = app_fini,
    .worker_init = qgen_worker_init,
    .worker_fini = qgen_worker_fini,
    .jobs_options = jobs_options,
    .start = start,
    .stop = stop,
    .ready = ready,
};
