/*
 * pubsub.c - events over nng pub0/sub0.
 *
 * Wire format: "<topic>\0" + packed cm.Event. Putting the topic first lets sub0's own prefix
 * subscriptions filter messages before we unpack anything. Publishing never blocks (pub0 drops
 * when a subscriber's queue is full); events are notifications, the truth is in PostgreSQL.
 *
 * DESIGN (discovery). A subscriber is one sub0 socket with one dialer per publisher. A static
 * entry is dialled once at open. A dns+tcp:// entry is resolved by a thread of the subscriber, at
 * once and every period (a lookup may block: never on a caller's thread or an nng callback): an
 * address that appeared gets a dialer of its own, a dialer whose address went is closed (its
 * connection with it). That is cheap because a subscriber holds no calls: nothing to drain, and
 * an event missed while a publisher was not yet dialled is one a subscriber would have missed
 * anyway (events are never the only copy). A failed lookup keeps the dialers it had.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "cm/log.h"
#include "cm/pubsub.h"
#include "cm/util.h"
#include "dns_int.h"
#include "proto/common.pb-c.h"

#define TOPIC_MAX 256

struct cm_pub {
	nng_socket sock;
};

#define PEER_URL_MAX (CM_RPC_MAX_ADDR + 32)

/* The publishers one dns+tcp:// entry resolved to, each with its dialer (resolver thread only). */
typedef struct sub_name {
	char host[DNS_HOST_MAX];
	char port[8];
	struct {
		char       url[PEER_URL_MAX];
		nng_dialer d;
	} peer[CM_RPC_MAX_REPLICAS];
	size_t n;
} sub_name;

struct cm_sub {
	nng_socket sock;
	bool       sock_open;
	nng_aio   *aio;
	cm_sub_fn  cb;
	void      *arg;
	/* Discovery: the dns+tcp:// entries and the thread that keeps their dialers. */
	sub_name         *names;
	size_t            n_names;
	cm_rpc_resolve_fn resolve;
	void             *resolve_arg;
	int               period_ms;
	pthread_t         thread;
	bool              started, stop; /* stop: under mtx */
	pthread_mutex_t   mtx;
	pthread_cond_t    cv;
};

cm_err
cm_pub_open(cm_pub **out, const char *url)
{
	cm_pub *p;
	int     rv;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CM_ENOMEM;
	if ((rv = nng_pub0_open(&p->sock)) != 0) {
		free(p);
		return CM_EINTERNAL;
	}
	if ((rv = nng_listen(p->sock, url, NULL, 0)) != 0) {
		cm_error("PUB-LISTEN-FAIL", "cannot listen on %s: %s", url, nng_strerror(rv));
		nng_close(p->sock);
		free(p);
		return rv == NNG_EADDRINUSE ? CM_EEXIST : CM_EINVAL;
	}
	*out = p;
	return CM_OK;
}

void
cm_pub_close(cm_pub *p)
{
	if (p == NULL)
		return;
	nng_close(p->sock);
	free(p);
}

cm_err
cm_pub_send(cm_pub *p, const char *topic, const char *type, const void *payload, size_t len)
{
	Cm__Event ev = CM__EVENT__INIT;
	size_t    tlen, n;
	nng_msg  *msg;

	if (p == NULL || topic == NULL || (tlen = strlen(topic)) == 0 || tlen > TOPIC_MAX)
		return CM_EINVAL;
	ev.topic = (char *)topic;
	ev.type = (char *)(type != NULL ? type : "");
	ev.payload.data = (uint8_t *)payload;
	ev.payload.len = len;
	n = cm__event__get_packed_size(&ev);
	if (nng_msg_alloc(&msg, tlen + 1 + n) != 0)
		return CM_ENOMEM;
	memcpy(nng_msg_body(msg), topic, tlen + 1);
	cm__event__pack(&ev, (uint8_t *)nng_msg_body(msg) + tlen + 1);
	if (nng_sendmsg(p->sock, msg, NNG_FLAG_NONBLOCK) != 0) {
		nng_msg_free(msg);
		return CM_EUNAVAIL;
	}
	return CM_OK;
}

static void
sub_cb(void *arg)
{
	cm_sub    *s = arg;
	nng_msg   *msg;
	Cm__Event *ev;
	char      *body;
	size_t     len, tlen;

	if (nng_aio_result(s->aio) != 0)
		return; /* closed */
	msg = nng_aio_get_msg(s->aio);
	body = nng_msg_body(msg);
	len = nng_msg_len(msg);
	tlen = strnlen(body, len < TOPIC_MAX + 1 ? len : TOPIC_MAX + 1);
	if (tlen < len && tlen <= TOPIC_MAX) {
		ev = cm__event__unpack(NULL, len - tlen - 1, (uint8_t *)body + tlen + 1);
		if (ev != NULL) {
			s->cb(s->arg, ev->topic, ev->type, ev->payload.data, ev->payload.len);
			cm__event__free_unpacked(ev, NULL);
		}
	}
	nng_msg_free(msg);
	nng_recv_aio(s->sock, s->aio);
}

/* A dialer of its own for one publisher, reconnecting by itself. */
static int
dial(cm_sub *s, const char *url, nng_dialer *d)
{
	int rv;

	if ((rv = nng_dialer_create(d, s->sock, url)) != 0)
		return rv;
	nng_dialer_set_ms(*d, NNG_OPT_RECONNMINT, 100);
	nng_dialer_set_ms(*d, NNG_OPT_RECONNMAXT, 2000);
	if ((rv = nng_dialer_start(*d, NNG_FLAG_NONBLOCK)) != 0)
		nng_dialer_close(*d);
	return rv;
}

/* Brings the dialers of one name in line with answer a. */
static void
sync_name(cm_sub *s, sub_name *nm, const cm_rpc_addrs *a)
{
	char url[PEER_URL_MAX];

	for (size_t k = 0; k < nm->n;) {
		bool kept = false;
		for (size_t i = 0; i < a->n && !kept; i++) {
			dns_url(a->addr[i], nm->port, url, sizeof(url));
			kept = strcmp(url, nm->peer[k].url) == 0;
		}
		if (kept) {
			k++;
			continue;
		}
		nng_dialer_close(nm->peer[k].d);
		cm_info("SUB-DNS-GONE", "%s: publisher %s went", nm->host, nm->peer[k].url);
		nm->peer[k] = nm->peer[--nm->n];
	}
	for (size_t i = 0; i < a->n; i++) {
		bool known = false;
		dns_url(a->addr[i], nm->port, url, sizeof(url));
		for (size_t k = 0; k < nm->n && !known; k++)
			known = strcmp(url, nm->peer[k].url) == 0;
		if (known)
			continue;
		if (nm->n >= CM_RPC_MAX_REPLICAS) {
			cm_warn("SUB-DNS-FULL", "%s: %s not dialled: %d publishers at most",
			        nm->host, url, CM_RPC_MAX_REPLICAS);
			break;
		}
		if (dial(s, url, &nm->peer[nm->n].d) != 0)
			continue;
		cm_strlcpy(nm->peer[nm->n].url, url, PEER_URL_MAX);
		nm->n++;
		cm_info("SUB-DNS-ADD", "%s: publisher %s appeared", nm->host, url);
	}
}

static void *
resolver_main(void *arg)
{
	cm_sub       *s = arg;
	cm_rpc_addrs *a;

	if ((a = malloc(sizeof(*a))) == NULL)
		return NULL;
	pthread_mutex_lock(&s->mtx);
	while (!s->stop) {
		int64_t         until;
		struct timespec ts;

		pthread_mutex_unlock(&s->mtx);
		for (size_t i = 0; i < s->n_names; i++) {
			a->n = 0;
			if (s->resolve(s->resolve_arg, s->names[i].host, a) == CM_OK)
				sync_name(s, &s->names[i], a);
		}
		until = cm_mono_ms() + s->period_ms;
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000L;
		pthread_mutex_lock(&s->mtx);
		while (!s->stop && cm_mono_ms() < until)
			if (pthread_cond_timedwait(&s->cv, &s->mtx, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&s->mtx);
	free(a);
	return NULL;
}

/* Dials a static entry, or records a dns+tcp:// one for the resolver thread. */
static cm_err
add_entry(cm_sub *s, const char *u)
{
	sub_name  *grown;
	int        rv;
	nng_dialer d;

	if (!dns_is_entry(u)) {
		if ((rv = dial(s, u, &d)) != 0) {
			cm_error("SUB-DIAL-FAIL", "bad publisher address %s: %s", u,
			         nng_strerror(rv));
			return CM_EINVAL;
		}
		return CM_OK;
	}
	if ((grown = realloc(s->names, (s->n_names + 1) * sizeof(*grown))) == NULL)
		return CM_ENOMEM;
	s->names = grown;
	memset(&s->names[s->n_names], 0, sizeof(*grown));
	if (!dns_parse(u, s->names[s->n_names].host, s->names[s->n_names].port)) {
		cm_error("SUB-DNS-BAD", "bad publisher entry %s (dns+tcp://name:port)", u);
		return CM_EINVAL;
	}
	s->n_names++;
	return CM_OK;
}

cm_err
cm_sub_open(cm_sub **out, const char *urls, cm_sub_fn cb, void *arg)
{
	return cm_sub_open_opts(out, urls, cb, arg, NULL);
}

cm_err
cm_sub_open_opts(cm_sub **out, const char *urls, cm_sub_fn cb, void *arg, const cm_sub_opts *opts)
{
	static const cm_sub_opts none;
	cm_sub                  *s = NULL;
	char                    *list = NULL, *save = NULL;
	cm_err                   err = CM_ENOMEM;

	if (urls == NULL || cb == NULL)
		return CM_EINVAL;
	if (opts == NULL)
		opts = &none;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CM_ENOMEM;
	pthread_mutex_init(&s->mtx, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->cb = cb;
	s->arg = arg;
	s->resolve = opts->resolve != NULL ? opts->resolve : dns_lookup;
	s->resolve_arg = opts->resolve_arg;
	s->period_ms = dns_period_ms(opts->resolve_ms);
	if ((list = strdup(urls)) == NULL)
		goto out;
	err = CM_EINTERNAL;
	if (nng_sub0_open(&s->sock) != 0)
		goto out;
	s->sock_open = true;
	if (nng_aio_alloc(&s->aio, sub_cb, s) != 0)
		goto out;
	for (char *u = strtok_r(list, ",", &save); u != NULL; u = strtok_r(NULL, ",", &save)) {
		while (*u == ' ')
			u++;
		if (*u != '\0' && (err = add_entry(s, u)) != CM_OK)
			goto out;
	}
	err = CM_ENOMEM;
	if (s->n_names > 0) {
		if (pthread_create(&s->thread, NULL, resolver_main, s) != 0)
			goto out;
		s->started = true;
	}
	nng_recv_aio(s->sock, s->aio);
	*out = s;
	s = NULL;
	err = CM_OK;
out:
	free(list);
	cm_sub_close(s);
	return err;
}

cm_err
cm_sub_subscribe(cm_sub *s, const char *topic_prefix)
{
	if (nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, topic_prefix, strlen(topic_prefix)) != 0)
		return CM_EINTERNAL;
	return CM_OK;
}

void
cm_sub_close(cm_sub *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mtx);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mtx);
		pthread_join(s->thread, NULL);
	}
	/* The receive loop first: its callback re-arms the receive, and one re-armed on a socket
	 * being closed is the kind of race after which nng 1.5.2's reaper can wait for ever
	 * (nanomsg/nng#1543). Stopped, the aio refuses any new receive. */
	if (s->aio != NULL)
		nng_aio_stop(s->aio);
	if (s->sock_open)
		nng_close(s->sock); /* and its dialers */
	nng_aio_free(s->aio);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s->names);
	free(s);
}
