/*
 * server.h - svc-chat's definition for the service skeleton (cm/service.h): process state,
 * per-worker state, method table, event publishing.
 *
 * chat_service is created once: config, the LLM client (NULL: the offline provider), the svc-pdf
 * client, the event publisher, metrics; all of them are thread-safe. Each RPC worker has a
 * chat_worker around the skeleton's PostgreSQL and Redis connections. A chat.Send occupies its
 * worker for the whole answer (the LLM client blocks), so a replica answers at most
 * CHAT_WORKERS - 1 questions at once and keeps one worker for everything else (turn_slots);
 * tests build workers themselves and call the handlers directly.
 */
#ifndef CHAT_SERVER_H
#define CHAT_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "cm/llm.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/pubsub.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "config.h"

typedef struct chat_service {
	chat_config    cfg;
	const char    *schema;
	int            turn_slots; /* answers this replica writes at once */
	atomic_int     turns_now;
	cm_llm        *llm; /* NULL: offline provider */
	cm_rpc_client *pdf;
	const char    *database_url; /* DATABASE_URL (common's): the cascade's own connection */
	struct cm_follower *cascade; /* svc-pdf's deletion log; NULL when stopped */
	cm_pub             *pub;     /* NULL: no events */
	struct chat_cache  *chats;   /* chats seen, for chat.Send (cache.h) */
	cm_metrics         *metrics;
	cm_counter         *turns_complete;
	cm_counter         *turns_incomplete;
	cm_counter         *turns_refused;
	cm_counter   *legacy_failures; /* legacy answers that explained a failure in their text */
	cm_counter   *deltas;
	cm_histogram *prepare_s;     /* chat.Send received -> the model asked (admission, history,
	                              * retrieval, prompt) */
	cm_histogram *retrieve_s;    /* passages from svc-pdf */
	cm_histogram *first_delta_s; /* chat.Send received -> first delta published */
	cm_histogram *turn_s;        /* chat.Send received -> answer stored */
} chat_service;

typedef struct chat_worker {
	chat_service *svc;
	cm_pg        *pg;    /* borrowed */
	cm_redis     *redis; /* borrowed */
} chat_worker;

extern const cm_service_def chat_service_def;
extern const cm_rpc_method  chat_methods[];
extern const size_t         chat_n_methods;

/* Every migration of schema "chat". */
size_t chat_migrations_all(cm_migration *out, size_t cap);

/* Copies cfg; builds the LLM client from LLM_* (none set: offline), the svc-pdf client and the
 * publisher (cfg->events_url; "" for none); registers metrics on m (may be NULL). workers is
 * the number of RPC workers (turn_slots = workers - 1, at least 1). */
CM_MUSTCHECK cm_err chat_service_init(chat_service *s, const cm_service_config *common,
                                      const char *schema, const chat_config *cfg, cm_metrics *m);
void                chat_service_fini(chat_service *s);

/* A worker around borrowed connections (the caller closes them after chat_worker_free). */
CM_MUSTCHECK cm_err chat_worker_alloc(chat_service *s, cm_pg *pg, cm_redis *redis,
                                      chat_worker **out);
void                chat_worker_free(chat_worker *w);

/* Publishes a chat event on topic "chat.<chat_id>": type "chat.delta" (delta: len bytes) or
 * "chat.done" (status). Never blocks; dropped when nobody can take it. */
void chat_publish(chat_service *s, const char *type, const char *chat_id, const char *message_id,
                  const char *owner, const char *delta, size_t len, const char *status);

#endif
