/*
 * server.c - svc-qgen's method table, service and per-thread state, migrations, readiness.
 *
 * DESIGN: every thread that touches PostgreSQL or Redis owns its own connections (a
 * qgen_worker); the LLM client, the svc-pdf client and the publisher are thread-safe and shared.
 * A worker whose state could not be built answers every call UNAVAILABLE rather than crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "proto/qgen.pb-c.h"
#include "handlers.h"
#include "server.h"

extern const cm_migration qgen_migrations[];
extern const size_t       qgen_migrations_count;

const cm_rpc_method qgen_methods[] = {
    {"qgen.Create", &qgen__create_request__descriptor, &qgen__create_response__descriptor,
     qgen_handle_create},
    {"qgen.GetJob", &qgen__job_ref__descriptor, &qgen__job__descriptor, qgen_handle_get_job},
    {"qgen.CancelJob", &qgen__job_ref__descriptor, &qgen__job__descriptor, qgen_handle_cancel_job},
    {"qgen.GetSet", &qgen__get_set_request__descriptor, &qgen__question_set__descriptor,
     qgen_handle_get_set},
    {"qgen.DeleteDocument", &qgen__delete_document_request__descriptor,
     &qgen__delete_document_response__descriptor, qgen_handle_delete_document},
};
const size_t qgen_n_methods = sizeof(qgen_methods) / sizeof(qgen_methods[0]);

size_t
qgen_migrations_all(cm_migration *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < qgen_migrations_count && n < cap; i++)
		out[n++] = qgen_migrations[i];
	/* The job queue's tables come after 001_init and before any later file migration would
	 * need them; file migrations are numbered from 003 on. */
	if (n < cap) {
		out[n].version = 2;
		out[n].name = "jobs";
		out[n].up = cm_jobs_migration_up;
		out[n].down = cm_jobs_migration_down;
		n++;
	}
	for (size_t i = 1; i < n; i++) { /* keep ascending versions */
		cm_migration m = out[i];
		size_t       j = i;
		while (j > 0 && out[j - 1].version > m.version) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = m;
	}
	return n;
}

cm_err
qgen_service_init(qgen_service *s, const qgen_config *cfg, cm_metrics *m)
{
	char        errbuf[256];
	const char *model = getenv("LLM_MODEL");
	cm_err      err;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->metrics = m;
	err = cm_llm_alloc_env(&s->llm, cfg->redis_host, (int)cfg->redis_port, m, errbuf,
	                       sizeof(errbuf));
	if (err == CM_ENOTFOUND) {
		s->llm = NULL;
		snprintf(s->model, sizeof(s->model), "offline");
		cm_info("QGEN-OFFLINE", "LLM_BASE_URL is not set: questions come from the offline "
		                        "extractive provider");
	} else if (err != CM_OK) {
		cm_error("QGEN-LLM-CONFIG", "LLM configuration: %s", errbuf);
		return err;
	} else {
		snprintf(s->model, sizeof(s->model), "%s",
		         model != NULL && model[0] != '\0' ? model : "default");
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
	s->cache_hits =
	    cm_metrics_counter(m, "cache_hits_total", "sets answered from the cache", NULL);
	s->questions_rejected = cm_metrics_counter(m, "questions_rejected_total",
	                                           "model questions that failed validation", NULL);
	s->batches_failed = cm_metrics_counter(m, "batches_failed_total",
	                                       "generation calls that gave nothing", NULL);
	s->llm_calls =
	    cm_metrics_counter(m, "generation_calls_total", "generation calls made", NULL);
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

cm_err
qgen_worker_alloc(qgen_service *s, qgen_worker **out)
{
	qgen_worker    *w = NULL;
	cm_jobs_options jo;
	cm_err          err = CM_ENOMEM;

	*out = NULL;
	memset(&jo, 0, sizeof(jo));
	jo.channel = QGEN_CHANNEL;
	jo.lease_ms = (int)s->cfg.lease_ms;
	jo.max_attempts = 5;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto out;
	w->svc = s;
	if ((err = cm_pg_open(&w->pg, s->cfg.database_url,
	                      s->cfg.schema != NULL ? s->cfg.schema : QGEN_SCHEMA)) != CM_OK ||
	    (err = cm_redis_open(&w->redis, s->cfg.redis_host, (int)s->cfg.redis_port,
	                         CM_REDIS_TIMEOUT_MS)) != CM_OK ||
	    (err = cm_jobs_open(&w->jobs, w->pg, &jo)) != CM_OK)
		goto out;
	*out = w;
	w = NULL;
out:
	qgen_worker_free(w);
	return err;
}

void
qgen_worker_free(qgen_worker *w)
{
	if (w == NULL)
		return;
	cm_jobs_close(w->jobs);
	cm_redis_close(w->redis);
	cm_pg_close(w->pg);
	free(w);
}

static void *
worker_init(void *arg, int index)
{
	qgen_worker *w = NULL;

	if (qgen_worker_alloc(arg, &w) != CM_OK)
		cm_error("QGEN-WORKER-INIT", "worker %d has no state; it will answer UNAVAILABLE",
		         index);
	return w;
}

static void
worker_fini(void *arg, void *state)
{
	(void)arg;
	qgen_worker_free(state);
}

cm_err
qgen_server_start(qgen_service *s, cm_rpc_server **out)
{
	cm_rpc_server_config c;

	memset(&c, 0, sizeof(c));
	c.url = s->cfg.rpc_url;
	c.workers = (int)s->cfg.workers;
	c.methods = qgen_methods;
	c.n_methods = qgen_n_methods;
	c.worker_init = worker_init;
	c.worker_fini = worker_fini;
	c.arg = s;
	c.metrics = s->metrics;
	return cm_rpc_server_start(out, &c);
}

bool
qgen_ready_check(void *arg, char *why, size_t whylen)
{
	qgen_ready *r = arg;

	if (!cm_pg_ping(r->pg)) {
		snprintf(why, whylen, "postgresql unreachable: %s", cm_pg_errmsg(r->pg));
		return false;
	}
	if (cm_rpc_client_healthy(r->svc->pdf) == 0) {
		snprintf(why, whylen, "no svc-pdf replica reachable");
		return false;
	}
	return true;
}
