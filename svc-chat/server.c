/*
 * server.c - svc-chat's definition for the service skeleton: method table, service and worker
 * state, event publishing, readiness.
 *
 * DESIGN: RPC workers are the only threads that touch PostgreSQL (the skeleton's connections);
 * the LLM client, the svc-pdf client and the publisher are shared and thread-safe. Events are
 * notifications: a subscriber that misses some reads the stored message (chat.ListMessages).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cascade.h"
#include "cm/follow.h"
#include "cm/log.h"
#include "handlers.h"
#include "proto/chat.pb-c.h"
#include "server.h"

extern const cm_migration chat_migrations[];
extern const size_t       chat_migrations_count;

const cm_rpc_method chat_methods[] = {
    {"chat.Create", &chat__create_request__descriptor, &chat__chat__descriptor, chat_handle_create,
     NULL},
    {"chat.Get", &chat__chat_ref__descriptor, &chat__chat__descriptor, chat_handle_get, NULL},
    {"chat.ListMessages", &chat__list_request__descriptor, &chat__message_list__descriptor,
     chat_handle_list, NULL},
    {"chat.Send", &chat__send_request__descriptor, &chat__message__descriptor, chat_handle_send,
     NULL},
    {"chat.History", &chat__history_request__descriptor, &chat__history__descriptor,
     chat_handle_history, NULL},
    {"chat.Clear", &chat__history_request__descriptor, &chat__clear_response__descriptor,
     chat_handle_clear, NULL},
};
const size_t chat_n_methods = sizeof(chat_methods) / sizeof(chat_methods[0]);

size_t
chat_migrations_all(cm_migration *out, size_t cap)
{
	return cm_service_migrations(&chat_service_def, out, cap);
}

cm_err
chat_service_init(chat_service *s, const cm_service_config *common, const char *schema,
                  const chat_config *cfg, cm_metrics *m)
{
	char   errbuf[256];
	cm_err err;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->schema = schema;
	s->metrics = m;
	s->turn_slots = common->workers > 1 ? (int)common->workers - 1 : 1;
	atomic_init(&s->turns_now, 0);
	err = cm_llm_alloc_env(&s->llm, common->redis_host, (int)common->redis_port, m, errbuf,
	                       sizeof(errbuf));
	if (err == CM_ENOTFOUND) {
		s->llm = NULL;
		cm_info("CHAT-OFFLINE", "LLM_BASE_URL is not set: answers quote the best matching "
		                        "passages (offline provider)");
	} else if (err != CM_OK) {
		cm_error("CHAT-LLM-CONFIG", "LLM configuration: %s", errbuf);
		return err;
	}
	if ((err = chat_cache_alloc(&s->chats)) != CM_OK)
		goto fail;
	s->database_url = common->database_url;
	if ((err = cm_rpc_client_open(&s->pdf, "pdf", cfg->pdf_urls, m)) != CM_OK) {
		cm_error("CHAT-PDF-URLS", "bad CHAT_PDF_URLS: %s", cfg->pdf_urls);
		goto fail;
	}
	if (cfg->events_url[0] != '\0' && (err = cm_pub_open(&s->pub, cfg->events_url)) != CM_OK) {
		cm_error("CHAT-EVENTS", "cannot publish events on %s", cfg->events_url);
		goto fail;
	}
	s->turns_complete =
	    cm_metrics_counter(m, "turns_total", "chat answers by outcome", "outcome=\"complete\"");
	s->turns_incomplete = cm_metrics_counter(m, "turns_total", "chat answers by outcome",
	                                         "outcome=\"incomplete\"");
	s->turns_refused =
	    cm_metrics_counter(m, "turns_total", "chat answers by outcome", "outcome=\"refused\"");
	s->legacy_failures = cm_metrics_counter(
	    m, "legacy_failures_total",
	    "legacy answers that explain a model failure in a 200 response", NULL);
	s->deltas = cm_metrics_counter(m, "deltas_total", "answer deltas published", NULL);
	s->prepare_s = cm_metrics_histogram(m, "prepare_seconds",
	                                    "chat.Send received to the model asked", NULL);
	s->retrieve_s =
	    cm_metrics_histogram(m, "retrieve_seconds", "passages fetched from svc-pdf", NULL);
	s->first_delta_s = cm_metrics_histogram(
	    m, "first_delta_seconds", "chat.Send received to first delta published", NULL);
	s->turn_s =
	    cm_metrics_histogram(m, "turn_seconds", "chat.Send received to answer stored", NULL);
	return CM_OK;
fail:
	chat_service_fini(s);
	return err;
}

void
chat_service_fini(chat_service *s)
{
	cm_pub_close(s->pub);
	s->pub = NULL;
	cm_rpc_client_close(s->pdf);
	s->pdf = NULL;
	cm_llm_free(s->llm);
	s->llm = NULL;
	chat_cache_free(s->chats);
	s->chats = NULL;
}

cm_err
chat_worker_alloc(chat_service *s, cm_pg *pg, cm_redis *redis, chat_worker **out)
{
	chat_worker *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (w == NULL)
		return CM_ENOMEM;
	w->svc = s;
	w->pg = pg;
	w->redis = redis;
	*out = w;
	return CM_OK;
}

void
chat_worker_free(chat_worker *w)
{
	free(w);
}

void
chat_publish(chat_service *s, const char *type, const char *chat_id, const char *message_id,
             const char *owner, const char *delta, size_t len, const char *status)
{
	Chat__ChatEvent ev = CHAT__CHAT_EVENT__INIT;
	char            topic[8 + CM_UUID_LEN];
	uint8_t         small[1024], *buf = small;
	char           *d = NULL;
	size_t          n;

	if (s->pub == NULL)
		return;
	if (delta != NULL && len > 0) { /* protobuf-c strings are NUL-terminated */
		if ((d = malloc(len + 1)) == NULL)
			return;
		memcpy(d, delta, len);
		d[len] = '\0';
	}
	ev.chat_id = (char *)chat_id;
	ev.message_id = (char *)message_id;
	ev.owner = (char *)owner;
	ev.delta = d != NULL ? d : (char *)"";
	ev.status = (char *)(status != NULL ? status : "");
	n = chat__chat_event__get_packed_size(&ev);
	if (n > sizeof(small) && (buf = malloc(n)) == NULL)
		goto out;
	chat__chat_event__pack(&ev, buf);
	snprintf(topic, sizeof(topic), "chat.%s", chat_id);
	if (cm_pub_send(s->pub, topic, type, buf, n) == CM_OK && d != NULL)
		cm_counter_add(s->deltas, 1);
out:
	if (buf != small)
		free(buf);
	free(d);
}

/* ---- the skeleton's hooks -------------------------------------------------------------------- */

static cm_err
app_init(const cm_service_env *env, void *app)
{
	return chat_service_init(app, env->common, env->schema, env->config, env->metrics);
}

static void
app_fini(void *app)
{
	chat_service_fini(app);
}

static cm_err
worker_init(void *app, const cm_service_conns *conns, void **state)
{
	chat_worker *w = NULL;
	cm_err       err = chat_worker_alloc(app, conns->pg, conns->redis, &w);

	*state = w;
	return err;
}

static void
worker_fini(void *app, void *state)
{
	(void)app;
	chat_worker_free(state);
}

/* Background work: the follower of svc-pdf's deletion log (cascade.h). */
static cm_err
start(void *app)
{
	chat_service      *s = app;
	cm_follower_config cfg;

	cm_follow_pdf_deletions(&cfg, s->pdf, s->database_url,
	                        s->schema != NULL ? s->schema : CHAT_SCHEMA, chat_cascade_apply, s);
	return cm_follower_start(&s->cascade, &cfg);
}

static void
stop(void *app)
{
	chat_service *s = app;

	cm_follower_stop(s->cascade);
	s->cascade = NULL;
}

/* Beyond PostgreSQL (the skeleton's check): answers need svc-pdf's passages. */
static bool
ready(void *app, char *why, size_t whylen)
{
	chat_service *s = app;

	if (cm_rpc_client_healthy(s->pdf) == 0) {
		snprintf(why, whylen, "no svc-pdf replica reachable");
		return false;
	}
	return true;
}

const cm_service_def chat_service_def = {
    .name = "chat",
    .schema = CHAT_SCHEMA,
    .rpc_url_default = "tcp://127.0.0.1:7103",
    .admin_addr_default = "127.0.0.1:9103",
    .workers_default = "16",
    .config_size = sizeof(chat_config),
    .config_table = chat_config_table,
    .migrations = chat_migrations,
    .n_migrations = &chat_migrations_count,
    .follow_version = 2, /* after 001_init; file migrations are numbered from 003 on */
    .methods = chat_methods,
    .n_methods = &chat_n_methods,
    .app_size = sizeof(chat_service),
    .app_init = app_init,
    .app_fini = app_fini,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .start = start,
    .stop = stop,
    .ready = ready,
};
