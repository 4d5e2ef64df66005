/*
 * wsloop.c - the WebSocket sockets' event loop: framing (wslay), queues and limits (wsconn.h).
 *
 * DESIGN. One thread waits on an epoll set holding every adopted socket and an eventfd. Other
 * threads never touch a socket's fd or wslay context: they append frames to the socket's queue
 * (ws_enqueue), put it on the hub's ready list and write the eventfd. Each turn the loop serves
 * the sockets epoll reported and the ready ones: read (wslay answers pings and close frames
 * itself), move queued frames into wslay, send, and check the limits. Frames move into wslay
 * only while its own queue is small (a quarter of the limits), so a slow reader's backlog stays
 * in our queue, where old progress frames can be given up; the hard bound counts both queues and
 * wslay's pongs, and past it the socket is dropped. A timer sweep every few hundred ms pings
 * quiet sockets, closes silent ones and drops closing ones that cannot flush.
 *
 * Closing: the edge queues a close frame, stops reading (wslay_event_shutdown_read) and releases
 * the fd as soon as wslay has sent it; a client's close is answered by wslay the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "cm/log.h"
#include "cm/util.h"
#include "wsconn.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_RX_BUDGET                                                                               \
	(64 << 10) /* bytes read from one socket per turn: no client starves others                \
	            */

/* ---- the handshake's key ---------------------------------------------------------------------
 */

static bool
b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

bool
edge_ws_accept_key(const char *key, char out[29])
{
	unsigned char nonce[24], md[EVP_MAX_MD_SIZE];
	char          in[24 + sizeof(WS_GUID)];
	unsigned int  mdlen = 0;

	/* 16 bytes are 22 base64 characters and "==". */
	if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return false;
	for (int i = 0; i < 22; i++)
		if (!b64_char(key[i]))
			return false;
	if (EVP_DecodeBlock(nonce, (const unsigned char *)key, 24) != 18)
		return false;
	memcpy(in, key, 24);
	memcpy(in + 24, WS_GUID, sizeof(WS_GUID));
	if (EVP_Digest(in, 24 + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return false;
	return EVP_EncodeBlock((unsigned char *)out, md, 20) == 28;
}

/* ---- wslay's callbacks (loop) ----------------------------------------------------------------
 */

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	ws_conn *c = arg;
	ssize_t  n;

	(void)flags;
	if (c->in != NULL) {
		size_t k = c->in_len - c->in_off < len ? c->in_len - c->in_off : len;

		memcpy(buf, c->in + c->in_off, k);
		c->in_off += k;
		if (c->in_off == c->in_len) {
			free(c->in);
			c->in = NULL;
		}
		return (ssize_t)k;
	}
	if (c->rx_budget == 0) {
		/* Enough from this one for a turn: epoll reports the rest next turn. */
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > c->rx_budget)
		len = c->rx_budget;
	do
		n = recv(c->s.fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->rx_budget -= (size_t)n;
		return n;
	}
	/* 0 is the peer's end of stream: an error for wslay, and the socket is finished. */
	wslay_event_set_error(ctx, n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
	                               ? WSLAY_ERR_WOULDBLOCK
	                               : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
	ws_conn *c = arg;
	ssize_t  n;
	int      f = MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) != 0 ? MSG_MORE : 0);

	do
		n = send(c->s.fd, data, len, f);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
	                               ? WSLAY_ERR_WOULDBLOCK
	                               : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

/* Any frame, pongs included, proves the client alive; pings are counted per second. */
static void
frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *a,
               void *arg)
{
	ws_conn *c = arg;
	int64_t  now = cm_mono_ms();

	(void)ctx;
	c->last_rx_ms = now;
	if (a->opcode != WSLAY_PING)
		return;
	if (now - c->ping_window_ms >= 1000) {
		c->ping_window_ms = now;
		c->pings = 0;
	}
	if (++c->pings > c->hub->lim.pings_per_s)
		c->policy_close = WSLAY_CODE_POLICY_VIOLATION;
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a, void *arg)
{
	ws_conn *c = arg;

	(void)ctx;
	if ((a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) && !c->refused &&
	    c->policy_close == 0)
		ws_on_message(c, (const char *)a->msg, a->msg_length);
}

/* ---- one socket ------------------------------------------------------------------------------
 */

ws_conn *
ws_conn_alloc(edge_ws *h, const edge_ws_socket *s)
{
	static const struct wslay_event_callbacks cb = {
	    .recv_callback = recv_cb,
	    .send_callback = send_cb,
	    .on_frame_recv_start_callback = frame_start_cb,
	    .on_msg_recv_callback = msg_cb,
	};
	ws_conn *c = calloc(1, sizeof(*c));
	int      fl;

	if (c == NULL)
		return NULL;
	if (s->extra_len > 0 && (c->in = malloc(s->extra_len)) == NULL)
		goto fail;
	if (wslay_event_context_server_init(&c->ws, &cb, c) != 0)
		goto fail;
	wslay_event_config_set_max_recv_msg_length(c->ws, h->lim.max_in);
	if ((fl = fcntl(s->fd, F_GETFL)) < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	if (s->extra_len > 0)
		memcpy(c->in, s->extra, s->extra_len);
	c->in_len = s->extra_len;
	c->hub = h;
	c->e = h->e;
	c->s = *s;
	c->s.extra = NULL;
	c->s.extra_len = 0;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->mu, NULL);
	c->last_rx_ms = c->last_ping_ms = cm_mono_ms();
	return c;
fail:
	if (c->ws != NULL)
		wslay_event_context_free(c->ws);
	free(c->in);
	free(c);
	return NULL;
}

static void
free_queue(ws_conn *c)
{
	ws_frame *f;

	while ((f = c->qhead) != NULL) {
		c->qhead = f->next;
		free(f);
	}
	c->qtail = NULL;
	c->qn = c->qbytes = 0;
}

void
ws_conn_release(ws_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free_queue(c);
	free(c->in);
	if (c->ws != NULL)
		wslay_event_context_free(c->ws);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
ws_conn_abandon(ws_conn *c)
{
	c->closed = true;
	c->s.release(c->s.handle);
	ws_conn_release(c);
}

void
ws_wake_locked(ws_conn *c)
{
	edge_ws *h = c->hub;
	uint64_t one = 1;
	bool     wake = false;

	if (c->closed)
		return;
	pthread_mutex_lock(&h->readymu);
	if (!c->ready) {
		c->ready = true;
		atomic_fetch_add(&c->refs, 1);
		c->ready_next = h->ready;
		h->ready = c;
		wake = true;
	}
	pthread_mutex_unlock(&h->readymu);
	/* Under c->mu: the loop marks c closed under it before it ends and the eventfd goes away.
	 */
	if (wake && write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cm_warn("EDGE-WS-WAKE", "cannot wake the WebSocket loop: %s", strerror(errno));
}

void
ws_enqueue_locked(ws_conn *c, char *frame)
{
	const edge_ws_limits *l = &c->hub->lim;
	ws_frame             *f, **pp, *prev = NULL;
	size_t                len;

	if (frame == NULL)
		return;
	if (c->closed || c->overflow) {
		free(frame);
		return;
	}
	len = strlen(frame);
	if ((f = malloc(sizeof(*f) + len)) == NULL) {
		free(frame);
		c->overflow = true; /* a lost frame would be silent: end the socket instead */
		ws_wake_locked(c);
		return;
	}
	f->next = NULL;
	f->len = len;
	f->progress = strncmp(frame, "{\"type\":\"job.progress\"", 22) == 0;
	memcpy(f->data, frame, len);
	free(frame);
	/* Three quarters of the limits wait here (the rest is wslay's): past them, give up the
	 * oldest progress frame, which a later one supersedes. */
	if (c->qn + 1 > l->max_queue * 3 / 4 || c->qbytes + len > l->max_queue_bytes * 3 / 4) {
		for (pp = &c->qhead; *pp != NULL && !(*pp)->progress; pp = &(*pp)->next)
			prev = *pp;
		if (*pp != NULL) {
			ws_frame *victim = *pp;

			*pp = victim->next;
			if (c->qtail == victim)
				c->qtail = prev;
			c->qn--;
			c->qbytes -= victim->len;
			free(victim);
		}
	}
	if (c->qtail != NULL)
		c->qtail->next = f;
	else
		c->qhead = f;
	c->qtail = f;
	c->qn++;
	c->qbytes += len;
	if (c->qn > l->max_queue || c->qbytes > l->max_queue_bytes)
		c->overflow = true;
	ws_wake_locked(c);
}

void
ws_enqueue(ws_conn *c, char *frame)
{
	pthread_mutex_lock(&c->mu);
	ws_enqueue_locked(c, frame);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the loop's side of a socket -------------------------------------------------------------
 */

/* Moves queued frames into wslay: all of them when all, else while wslay's queue is small.
 * False when the socket is past its limits. */
static bool
feed(ws_conn *c, bool all)
{
	const edge_ws_limits *l = &c->hub->lim;
	ws_frame             *f;
	bool                  ok;

	pthread_mutex_lock(&c->mu);
	while ((f = c->qhead) != NULL &&
	       (all || (wslay_event_get_queued_msg_count(c->ws) < l->max_queue / 4 &&
	                wslay_event_get_queued_msg_length(c->ws) < l->max_queue_bytes / 4))) {
		struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)f->data, f->len};

		/* After a close frame wslay takes nothing more: the frame is dropped with it. */
		(void)wslay_event_queue_msg(c->ws, &m); /* copies the data */
		c->qhead = f->next;
		if (c->qhead == NULL)
			c->qtail = NULL;
		c->qn--;
		c->qbytes -= f->len;
		free(f);
	}
	ok = !c->overflow && c->qn + wslay_event_get_queued_msg_count(c->ws) <= l->max_queue &&
	     c->qbytes + wslay_event_get_queued_msg_length(c->ws) <= l->max_queue_bytes;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* Stops reading and closes with code once the frames waiting are out (wslay sends control
 * frames ahead of data, and nothing after a close: queueing it now would lose them). */
static void
begin_close(ws_conn *c, uint16_t code, const char *reason, int64_t now)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	c->close_reason = reason;
	c->close_by_ms = now + c->hub->lim.close_grace_ms;
	wslay_event_shutdown_read(c->ws);
}

/* Queues the close frame of a closing socket whose data frames are all out; true when it did. */
static bool
queue_close(ws_conn *c)
{
	if (!c->closing || c->close_queued || wslay_event_get_queued_msg_count(c->ws) != 0)
		return false;
	c->close_queued = true;
	(void)wslay_event_queue_close(c->ws, c->close_code, (const uint8_t *)c->close_reason,
	                              strlen(c->close_reason));
	return true;
}

/* Done with c: out of the hub and epoll, fd released; the loop's reference goes at the end of
 * the turn (epoll may still report c in this turn's batch). */
static void
finish(edge_ws *h, ws_conn *c)
{
	if (c->finished)
		return;
	c->finished = true;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	pthread_mutex_unlock(&c->mu);
	ws_hub_forget(h, c);
	if (c->registered)
		(void)epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->s.fd, NULL);
	c->s.release(c->s.handle);
	if (c->lprev != NULL)
		c->lprev->lnext = c->lnext;
	else if (h->live == c)
		h->live = c->lnext;
	if (c->lnext != NULL)
		c->lnext->lprev = c->lprev;
	c->lprev = NULL;
	c->lnext = h->dead;
	h->dead = c;
}

/* Drops the loop's reference to the sockets finished this turn. */
static void
reap(edge_ws *h)
{
	ws_conn *c;

	while ((c = h->dead) != NULL) {
		h->dead = c->lnext;
		ws_conn_release(c);
	}
}

/* One step of c: read when readable, move frames, send, check the limits, watch for what wslay
 * wants next. */
static void
serve(edge_ws *h, ws_conn *c, bool readable, int64_t now)
{
	struct epoll_event ev = {0};

	if (c->finished)
		return;
	c->rx_budget = WS_RX_BUDGET;
	if (readable && wslay_event_want_read(c->ws) && wslay_event_recv(c->ws) != 0) {
		finish(h, c); /* the peer went away or broke the protocol */
		return;
	}
	if (c->policy_close != 0)
		begin_close(c, c->policy_close, "too many pings", now);
	if (!c->closing && !wslay_event_get_read_enabled(c->ws)) {
		/* wslay answered the client's close, or closed 1009 itself: same grace as ours. */
		c->closing = c->close_queued = true;
		c->close_by_ms = now + c->hub->lim.close_grace_ms;
	}
	if (!feed(c, c->closing)) {
		/* Not reading: a close frame would wait behind the rest. */
		cm_debug("EDGE-WS-SLOW", "dropping a WebSocket whose client does not read");
		finish(h, c);
		return;
	}
	(void)queue_close(c);
	if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
		finish(h, c);
		return;
	}
	if (queue_close(c) && wslay_event_send(c->ws) != 0) {
		finish(h, c);
		return;
	}
	if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
		finish(h, c); /* closed both ways, or our close frame is out */
		return;
	}
	ev.events = (wslay_event_want_read(c->ws) ? EPOLLIN : 0) |
	            (wslay_event_want_write(c->ws) ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (ev.events != c->events && epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->s.fd, &ev) == 0)
		c->events = ev.events;
}

/* A socket the loop sees for the first time. */
static void
attach(edge_ws *h, ws_conn *c, int64_t now)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, c->s.fd, &ev) != 0) {
		cm_warn("EDGE-WS-EPOLL", "cannot watch a WebSocket: %s", strerror(errno));
		finish(h, c);
		return;
	}
	c->registered = true;
	c->events = EPOLLIN;
	c->lnext = h->live;
	if (h->live != NULL)
		h->live->lprev = c;
	h->live = c;
	if (c->refused)
		begin_close(c, c->refuse_close, "refused", now);
	else if (atomic_load(&h->stop))
		begin_close(c, WSLAY_CODE_GOING_AWAY, "server going away", now);
	serve(h, c, true, now); /* the engine's extra bytes may hold whole frames */
}

/* Pings quiet sockets, closes silent ones, drops closings that could not flush. */
static void
sweep(edge_ws *h, int64_t now)
{
	int64_t  idle = (int64_t)h->lim.idle_s * 1000;
	ws_conn *c, *next;

	for (c = h->live; c != NULL; c = next) {
		next = c->lnext;
		if (c->closing) {
			if (now >= c->close_by_ms)
				finish(h, c);
			continue;
		}
		if (now - c->last_rx_ms >= idle) {
			begin_close(c, WSLAY_CODE_GOING_AWAY, "idle", now);
		} else if (now - c->last_ping_ms >= idle / 3) {
			struct wslay_event_msg m = {WSLAY_PING, NULL, 0};

			c->last_ping_ms = now;
			(void)wslay_event_queue_msg(c->ws, &m);
		} else {
			continue;
		}
		serve(h, c, false, now);
	}
}

/* Serves the ready list (each entry holds a reference). An entry leaves the list under readymu:
 * until then c->ready stays set, so no other thread relinks c while we follow it. */
static void
serve_ready(edge_ws *h, int64_t now, bool abandon)
{
	ws_conn *c, *next;

	pthread_mutex_lock(&h->readymu);
	c = h->ready;
	h->ready = NULL;
	pthread_mutex_unlock(&h->readymu);
	for (; c != NULL; c = next) {
		pthread_mutex_lock(&h->readymu);
		next = c->ready_next;
		c->ready = false;
		pthread_mutex_unlock(&h->readymu);
		if (abandon)
			finish(h, c);
		else if (!c->registered && !c->finished)
			attach(h, c, now);
		else
			serve(h, c, false, now);
		ws_conn_release(c);
	}
}

static void *
loop_main(void *arg)
{
	edge_ws           *h = arg;
	struct epoll_event evs[64];
	int64_t            tick = (int64_t)h->lim.idle_s * 1000 / 6, drain_until = 0, next_sweep;

	if (tick > h->lim.close_grace_ms / 4)
		tick = h->lim.close_grace_ms / 4;
	tick = tick < 20 ? 20 : tick > 1000 ? 1000 : tick;
	next_sweep = cm_mono_ms() + tick;
	for (;;) {
		int64_t now = cm_mono_ms();
		int     n =
		    epoll_wait(h->epfd, evs, 64, (int)(next_sweep > now ? next_sweep - now : 0));

		now = cm_mono_ms();
		for (int i = 0; i < n; i++) {
			ws_conn *c = evs[i].data.ptr;
			uint64_t v;

			if (c == NULL) {
				if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					cm_warn("EDGE-WS-WAKE", "eventfd: %s", strerror(errno));
				continue;
			}
			/* A hang-up reads as the end of the stream or fails the next send. */
			serve(h, c, (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0, now);
		}
		serve_ready(h, now, false);
		if (atomic_load(&h->stop) && drain_until == 0) {
			ws_conn *c, *next;

			drain_until = now + h->lim.close_grace_ms;
			for (c = h->live; c != NULL; c = next) {
				next = c->lnext;
				begin_close(c, WSLAY_CODE_GOING_AWAY, "server going away", now);
				serve(h, c, false, now);
			}
		}
		if (now >= next_sweep) {
			sweep(h, now);
			next_sweep = now + tick;
		}
		if (drain_until != 0) {
			bool empty;

			pthread_mutex_lock(&h->mu);
			empty = h->conns == NULL;
			pthread_mutex_unlock(&h->mu);
			if (empty || now >= drain_until)
				break;
		}
		reap(h);
	}
	/* Past the drain's deadline, or every socket done: the ready list may still hold
	 * references, to finished sockets or to new ones (finish is once per socket). */
	while (h->live != NULL)
		finish(h, h->live);
	serve_ready(h, cm_mono_ms(), true);
	reap(h);
	return NULL;
}

cm_err
ws_loop_start(edge_ws *h)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->epfd < 0 || h->efd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->efd, &ev) != 0 ||
	    pthread_create(&h->thread, NULL, loop_main, h) != 0) {
		cm_error("EDGE-WS-FAIL", "cannot start the WebSocket loop: %s", strerror(errno));
		if (h->epfd >= 0)
			close(h->epfd);
		if (h->efd >= 0)
			close(h->efd);
		h->epfd = h->efd = -1;
		return CM_EINTERNAL;
	}
	h->running = true;
	return CM_OK;
}

void
ws_loop_stop(edge_ws *h)
{
	uint64_t one = 1;

	if (!h->running)
		return;
	atomic_store(&h->stop, 1);
	if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cm_warn("EDGE-WS-WAKE", "cannot wake the WebSocket loop: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	close(h->epfd);
	close(h->efd);
	h->epfd = h->efd = -1;
	h->running = false;
}
