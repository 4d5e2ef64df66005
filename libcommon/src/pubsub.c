/*
 * pubsub.c - events over nng pub0/sub0.
 *
 * Wire format: "<topic>\0" + packed cm.Event. Putting the topic first lets sub0's own prefix
 * subscriptions filter messages before we unpack anything. Publishing never blocks (pub0 drops
 * when a subscriber's queue is full); events are notifications, the truth is in PostgreSQL.
 */
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "cm/log.h"
#include "cm/pubsub.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"

#define TOPIC_MAX 256

struct cm_pub {
	nng_socket sock;
};

struct cm_sub {
	nng_socket sock;
	nng_aio   *aio;
	cm_sub_fn  cb;
	void      *arg;
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

cm_err
cm_sub_open(cm_sub **out, const char *urls, cm_sub_fn cb, void *arg)
{
	cm_sub *s = NULL;
	char   *list = NULL, *save = NULL;
	int     rv;

	if (urls == NULL || cb == NULL)
		return CM_EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL || (list = strdup(urls)) == NULL) {
		free(s);
		return CM_ENOMEM;
	}
	s->cb = cb;
	s->arg = arg;
	if ((rv = nng_sub0_open(&s->sock)) != 0 || (rv = nng_aio_alloc(&s->aio, sub_cb, s)) != 0) {
		free(list);
		free(s);
		return CM_EINTERNAL;
	}
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 2000);
	for (char *u = strtok_r(list, ",", &save); u != NULL; u = strtok_r(NULL, ",", &save)) {
		if ((rv = nng_dial(s->sock, u, NULL, NNG_FLAG_NONBLOCK)) != 0) {
			cm_error("SUB-DIAL-FAIL", "bad publisher address %s: %s", u,
			         nng_strerror(rv));
			free(list);
			cm_sub_close(s);
			return CM_EINVAL;
		}
	}
	free(list);
	nng_recv_aio(s->sock, s->aio);
	*out = s;
	return CM_OK;
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
	nng_close(s->sock);
	nng_aio_stop(s->aio);
	nng_aio_free(s->aio);
	free(s);
}
