/*
 * pubsub.h - events over nng pub0/sub0.
 *
 * A message is "<topic>\0" followed by a packed cm.Event, so subscribers filter by topic prefix
 * with nng's own subscription matching. nng pub/sub drops messages under pressure and a new
 * subscriber misses what was sent before it connected: an event is a notification or an
 * idempotent snapshot, never the only copy of state (that is in PostgreSQL).
 */
#ifndef CM_PUBSUB_H
#define CM_PUBSUB_H

#include <stddef.h>

#include "cm/err.h"
#include "cm/rpc.h" /* cm_rpc_resolve_fn: the same lookups as the RPC client's */

typedef struct cm_pub cm_pub;
typedef struct cm_sub cm_sub;

/* Publisher listening at url. Thread-safe: any thread may publish. */
CM_MUSTCHECK cm_err cm_pub_open(cm_pub **out, const char *url);
void                cm_pub_close(cm_pub *p);
/* Never blocks; drops the event when no subscriber can take it. */
cm_err cm_pub_send(cm_pub *p, const char *topic, const char *type, const void *payload, size_t len);

/* Subscriber dialing one or more publishers (comma-separated). Each entry is tcp://host:port, or
 * dns+tcp://name:port: a name with one address per publisher (a Kubernetes headless Service),
 * which a thread of the subscriber resolves at open and every period (cm_sub_opts.resolve_ms, or
 * env CM_RPC_RESOLVE_MS, or CM_RPC_RESOLVE_MS): publishers that appear are dialled, those whose
 * address went are hung up, a failed lookup keeps the last answer. `cb` runs on an nng thread for
 * each event whose topic starts with a subscribed prefix; it must not block. Strings and payload
 * are valid only during the callback. CM_EINVAL for a malformed entry. */
typedef void (*cm_sub_fn)(void *arg, const char *topic, const char *type, const void *payload,
                          size_t len);
typedef struct cm_sub_opts {
	int               resolve_ms;  /* dns+tcp:// period; 0 = the default above */
	cm_rpc_resolve_fn resolve;     /* NULL = getaddrinfo; tests give their own answers */
	void             *resolve_arg; /* passed to resolve */
} cm_sub_opts;
CM_MUSTCHECK cm_err cm_sub_open(cm_sub **out, const char *urls, cm_sub_fn cb, void *arg);
/* The same with options (NULL = defaults). */
CM_MUSTCHECK cm_err cm_sub_open_opts(cm_sub **out, const char *urls, cm_sub_fn cb, void *arg,
                                     const cm_sub_opts *opts);
CM_MUSTCHECK cm_err cm_sub_subscribe(cm_sub *s, const char *topic_prefix);
void                cm_sub_close(cm_sub *s);

#endif
