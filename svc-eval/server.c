/*
 * server.c - svc-eval's definition for the service skeleton: method table, service and
 * per-thread state, migrations, background runners, readiness, events.
 *
 * DESIGN: every thread that touches PostgreSQL or Redis has connections of its own (an
 * eval_worker: the skeleton's for RPC workers, its own for runner threads); the LLM client, the
 * svc-pdf and svc-qgen clients and the publisher are thread-safe and shared. A worker that
 * cannot be built stops start-up (cm/service.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"
#include "cm/follow.h"
#include "cm/log.h"
#include "cm/util.h"
#include "handlers.h"
#include "proto/eval.pb-c.h"
#include "server.h"

extern const cm_migration eval_migrations[];
extern const size_t       eval_migrations_count;

const cm_rpc_method eval_methods[] = {
    {"eval.Submit", &eval__submit_request__descriptor, &eval__attempt__descriptor,
     eval_handle_submit, NULL},
    {"eval.GetAttempt", &eval__attempt_ref__descriptor, &eval__attempt__descriptor,
     eval_handle_get_attempt, NULL},
    {"eval.GetJob", &eval__job_ref__descriptor, &eval__job__descriptor, eval_handle_get_job, NULL},
};
const size_t eval_n_methods = sizeof(eval_methods) / sizeof(eval_methods[0]);

size_t
eval_migrations_all(cm_migration *out, size_t cap)
{
	return cm_service_migrations(&eval_service_def, out, cap);
}

void
eval_publish(eval_service *s, const char *type, const char *job_id, const char *owner, int done,
             int total, const char *status)
{
	Eval__JobEvent ev = EVAL__JOB_EVENT__INIT;
	char           topic[64];
	uint8_t        buf[512];
	size_t         n;

	if (s->pub == NULL || job_id == NULL || job_id[0] == '\0')
		return;
	ev.job_id = (char *)job_id;
	ev.owner = (char *)owner;
	ev.done = done;
	ev.total = total;
	ev.status = (char *)(status != NULL ? status : "");
	if ((n = protobuf_c_message_get_packed_size(&ev.base)) > sizeof(buf))
		return;
	protobuf_c_message_pack(&ev.base, buf);
	snprintf(topic, sizeof(topic), "job.%s", job_id);
	(void)cm_pub_send(s->pub, topic, type, buf, n);
}

cm_err
eval_service_init(eval_service *s, const cm_service_config *common, const char *schema,
                  const eval_config *cfg, cm_metrics *m)
{
	char   errbuf[256];
	cm_err err;

	memset(s, 0, sizeof(*s));
	s->common = *common;
	s->schema = schema;
	s->cfg = *cfg;
	s->metrics = m;
	err = cm_llm_alloc_env(&s->llm, common->redis_host, (int)common->redis_port, m, errbuf,
	                       sizeof(errbuf));
	if (err == CM_ENOTFOUND) {
		s->llm = NULL;
		snprintf(s->model, sizeof(s->model), "offline");
		cm_info("EVAL-OFFLINE", "LLM_BASE_URL is not set: open answers are graded offline "
		                        "by overlap with the reference answer and the source page");
	} else if (err != CM_OK) {
		cm_error("EVAL-LLM-CONFIG", "LLM configuration: %s", errbuf);
		return err;
	} else {
		/* The LLM client names the model (one default for the project: cm_llm_model). */
		snprintf(s->model, sizeof(s->model), "%s", cm_llm_model(s->llm));
	}
	if ((err = cm_rpc_client_open(&s->pdf, "pdf", cfg->pdf_urls, m)) != CM_OK) {
		cm_error("EVAL-PDF-URLS", "bad EVAL_PDF_URLS: %s", cfg->pdf_urls);
		goto fail;
	}
	if ((err = cm_rpc_client_open(&s->qgen, "qgen", cfg->qgen_urls, m)) != CM_OK) {
		cm_error("EVAL-QGEN-URLS", "bad EVAL_QGEN_URLS: %s", cfg->qgen_urls);
		goto fail;
	}
	if (cfg->events_url[0] != '\0' && (err = cm_pub_open(&s->pub, cfg->events_url)) != CM_OK) {
		cm_error("EVAL-EVENTS", "cannot publish events on %s", cfg->events_url);
		goto fail;
	}
	s->attempts = cm_metrics_counter(m, "attempts_total", "attempts submitted", NULL);
	s->answers_mcq =
	    cm_metrics_counter(m, "answers_total", "answers submitted", "type=\"mcq\"");
	s->answers_open =
	    cm_metrics_counter(m, "answers_total", "answers submitted", "type=\"open\"");
	s->cache_lookups = cm_metrics_counter(m, "grade_cache_lookups_total",
	                                      "open answers looked up in the grade cache", NULL);
	s->cache_hits =
	    cm_metrics_counter(m, "grade_cache_hits_total",
	                       "open answers graded from the cache (exact or near)", NULL);
	s->cache_near_hits = cm_metrics_counter(
	    m, "grade_cache_near_hits_total",
	    "cache hits on a near-identical (not the same) normalised answer", NULL);
	s->inflight_waits = cm_metrics_counter(
	    m, "grade_inflight_waits_total",
	    "open answers that waited for the same answer being graded for another attempt", NULL);
	s->grade_calls =
	    cm_metrics_counter(m, "llm_calls_total", "grading calls made", "kind=\"grade\"");
	s->overall_calls =
	    cm_metrics_counter(m, "llm_calls_total", "grading calls made", "kind=\"overall\"");
	s->items_retried = cm_metrics_counter(
	    m, "items_retried_total", "answers asked again (missing, out of range, garbage)", NULL);
	s->items_failed =
	    cm_metrics_counter(m, "items_failed_total", "answers that could not be graded", NULL);
	s->scores_capped =
	    cm_metrics_counter(m, "scores_capped_total", "model scores the guard capped", NULL);
	s->quota_refused = cm_metrics_counter(m, "quota_refused_total",
	                                      "submissions refused by the per-user quota", NULL);
	s->jobs_succeeded = cm_metrics_counter(m, "jobs_succeeded_total", "attempts graded", NULL);
	s->jobs_failed =
	    cm_metrics_counter(m, "jobs_failed_total", "attempts with ungraded answers", NULL);
	s->job_seconds =
	    cm_metrics_histogram(m, "job_duration_seconds", "time to grade an attempt", NULL);
	return CM_OK;
fail:
	eval_service_fini(s);
	return err;
}

void
eval_service_fini(eval_service *s)
{
	cm_pub_close(s->pub);
	s->pub = NULL;
	cm_rpc_client_close(s->qgen);
	s->qgen = NULL;
	cm_rpc_client_close(s->pdf);
	s->pdf = NULL;
	cm_llm_free(s->llm);
	s->llm = NULL;
}

void
eval_jobs_options(const eval_service *s, cm_jobs_options *jo)
{
	memset(jo, 0, sizeof(*jo));
	jo->channel = EVAL_CHANNEL;
	jo->lease_ms = (int)s->cfg.lease_ms;
	jo->max_attempts = 5;
}

cm_err
eval_worker_init(void *app, const cm_service_conns *conns, void **state)
{
	eval_worker *w = calloc(1, sizeof(*w));

	*state = w;
	if (w == NULL)
		return CM_ENOMEM;
	w->svc = app;
	w->pg = conns->pg;
	w->redis = conns->redis;
	w->jobs = conns->jobs;
	w->next_prune_ms = cm_mono_ms() + 60000; /* runners prune the grade cache now and then */
	return CM_OK;
}

void
eval_worker_fini(void *app, void *state)
{
	(void)app;
	free(state);
}

/* ---- the skeleton's hooks -------------------------------------------------------------------- */

static cm_err
app_init(const cm_service_env *env, void *app)
{
	return eval_service_init(app, env->common, env->schema, env->config, env->metrics);
}

static void
app_fini(void *app)
{
	eval_service_fini(app);
}

static void
jobs_options(const void *app, cm_jobs_options *jo)
{
	eval_jobs_options(app, jo);
}

/* The follower of svc-pdf's deletion log (cascade.h) on this replica. */
static cm_err
cascade_start(eval_service *s)
{
	cm_follower_config cfg;

	cm_follow_pdf_deletions(&cfg, s->pdf, s->common.database_url,
	                        s->schema != NULL ? s->schema : EVAL_SCHEMA, eval_cascade_apply, s);
	return cm_follower_start(&s->cascade, &cfg);
}

/* Background work: the runners, and the follower of svc-pdf's deletion log (cascade.h). */
static cm_err
start(void *app)
{
	eval_service *s = app;
	cm_err        err;

	if ((err = eval_runners_start(s)) != CM_OK)
		return err;
	if ((err = cascade_start(s)) != CM_OK)
		eval_runners_stop(s);
	return err;
}

static void
stop(void *app)
{
	eval_service *s = app;

	cm_follower_stop(s->cascade);
	s->cascade = NULL;
	eval_runners_stop(s);
}

/* Beyond PostgreSQL (the skeleton's check): grading needs svc-pdf's text. svc-qgen is needed
 * by v1 attempts only: without it they answer UNAVAILABLE, the legacy route still works. */
static bool
ready(void *app, char *why, size_t whylen)
{
	eval_service *s = app;

	if (cm_rpc_client_healthy(s->pdf) == 0) {
		snprintf(why, whylen, "no svc-pdf replica reachable");
		return false;
	}
	return true;
}

const cm_service_def eval_service_def = {
    .name = "eval",
    .schema = EVAL_SCHEMA,
    .rpc_url_default = "tcp://127.0.0.1:7105",
    .admin_addr_default = "127.0.0.1:9105",
    .workers_default = "4",
    .config_size = sizeof(eval_config),
    .config_table = eval_config_table,
    .migrations = eval_migrations,
    .n_migrations = &eval_migrations_count,
    .jobs_version = 2,   /* after 001_init */
    .follow_version = 3, /* file migrations are numbered from 004 on */
    .methods = eval_methods,
    .n_methods = &eval_n_methods,
    .app_size = sizeof(eval_service),
    .app_init = app_init,
    .app_fini = app_fini,
    .worker_init = eval_worker_init,
    .worker_fini = eval_worker_fini,
    .jobs_options = jobs_options,
    .start = start,
    .stop = stop,
    .ready = ready,
};
