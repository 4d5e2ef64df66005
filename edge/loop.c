/*
 * loop.c - the edge's event loops (loop.h).
 *
 * DESIGN. Each loop is one thread blocked in epoll_wait on: its daemon's own epoll fd (readable
 * when any of the daemon's sockets, its listening socket or its inter-thread channel is: a
 * connection resumed from an nng thread wakes it that way), an eventfd for posted work, and
 * whatever fds a component watches (the proxy's upstream sockets). The wait's timeout is the
 * nearest of the daemon's (connection timeouts; 0 when it has buffered work left) and the loop's
 * timer. The daemon runs only when its fd was ready, its time came or a connection of its was
 * resumed (edge_loop_daemon_due: libmicrohttpd, polled from outside, wakes for none of its own
 * resumes), so a wake-up for an upstream socket alone costs no call into it.
 *
 * The per-address cap counts sockets in one table for all loops: the daemon's accept check reads
 * the count, the connection's start adds to it and its close takes it back, so a refused or
 * failed accept never leaks a slot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cm/log.h"
#include "cm/util.h"
#include "loop.h"

#define EVENTS_MAX 64
#define ADDR_BUCKETS 1024
#define OPTIONS_MAX 32

typedef struct post {
	struct post *next;
	void (*fn)(void *arg);
	void *arg;
} post;

typedef struct addr_count {
	struct addr_count *next;
	unsigned char      key[16];
	size_t             len;
	unsigned           n;
} addr_count;

struct edge_loop {
	edge              *e;
	struct MHD_Daemon *mhd;
	int                epfd, wakefd;
	pthread_t          thread;
	bool               started;
	pthread_mutex_t    mu;
	post              *posts, *posts_tail; /* under mu */
	atomic_bool        stopping;
	atomic_bool        daemon_due; /* run the daemon on the next turn */
	int64_t            timer_due;  /* -1: none */
	void (*timer_fn)(void *arg);
	void *timer_arg;
	void *slot;
	void (*slot_cleanup)(void *v);
	edge_loop_watch mhd_watch, wake_watch;
};

struct edge_loops {
	edge_loop      *loop;
	int             n;
	atomic_uint     next;
	int             listen_fd;
	unsigned        per_addr_max;
	pthread_mutex_t addr_mu;
	addr_count     *bucket[ADDR_BUCKETS];
};

static _Thread_local edge_loop *self;

/* ---- the per-address count ------------------------------------------------------------------ */

/* The address bytes of sa (4 or 16), into key; 0 when it has none. */
static size_t
addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 16;
	}
	return 0;
}

static addr_count **
addr_find(edge_loops *ls, const unsigned char *key, size_t len)
{
	uint32_t     h = 2166136261u;
	addr_count **p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 16777619u;
	for (p = &ls->bucket[h % ADDR_BUCKETS]; *p != NULL; p = &(*p)->next)
		if ((*p)->len == len && memcmp((*p)->key, key, len) == 0)
			break;
	return p;
}

static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	edge_loops   *ls = cls;
	unsigned char key[16];
	size_t        len = addr_key(addr, key);
	addr_count  **p;
	bool          ok;

	(void)addrlen;
	if (ls->per_addr_max == 0 || len == 0)
		return MHD_YES;
	pthread_mutex_lock(&ls->addr_mu);
	p = addr_find(ls, key, len);
	ok = *p == NULL || (*p)->n < ls->per_addr_max;
	pthread_mutex_unlock(&ls->addr_mu);
	return ok ? MHD_YES : MHD_NO;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
	static char                     counted;
	edge_loops                     *ls = cls;
	const union MHD_ConnectionInfo *ci;
	unsigned char                   key[16];
	size_t                          len;
	addr_count                    **p;

	if (ls->per_addr_max == 0)
		return;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != &counted)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (len = addr_key(ci->client_addr, key)) == 0)
		return;
	pthread_mutex_lock(&ls->addr_mu);
	p = addr_find(ls, key, len);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		if (*p == NULL && (*p = calloc(1, sizeof(**p))) != NULL) {
			memcpy((*p)->key, key, len);
			(*p)->len = len;
		}
		if (*p != NULL) {
			(*p)->n++;
			*socket_context = &counted;
		}
	} else if (*p != NULL && --(*p)->n == 0) {
		addr_count *gone = *p;
		*p = gone->next;
		free(gone);
	}
	pthread_mutex_unlock(&ls->addr_mu);
}

/* ---- one loop ------------------------------------------------------------------------------- */

edge_loop *
edge_loop_self(void)
{
	return self;
}

void
edge_loop_daemon_due(edge_loop *l)
{
	uint64_t one = 1;

	if (atomic_exchange(&l->daemon_due, true) || l == self)
		return; /* already due, or noticed before this loop sleeps again */
	(void)!write(l->wakefd, &one, sizeof(one));
}

bool
edge_loop_post(edge_loop *l, void (*fn)(void *arg), void *arg)
{
	post    *p = malloc(sizeof(*p));
	uint64_t one = 1;

	if (p == NULL)
		return false;
	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&l->mu);
	if (l->posts_tail != NULL)
		l->posts_tail->next = p;
	else
		l->posts = p;
	l->posts_tail = p;
	pthread_mutex_unlock(&l->mu);
	(void)!write(l->wakefd, &one, sizeof(one));
	return true;
}

static void
run_posts(edge_loop *l)
{
	post    *p, *next;
	uint64_t n;

	(void)!read(l->wakefd, &n, sizeof(n));
	pthread_mutex_lock(&l->mu);
	p = l->posts;
	l->posts = l->posts_tail = NULL;
	pthread_mutex_unlock(&l->mu);
	for (; p != NULL; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

bool
edge_loop_watch_set(edge_loop *l, edge_loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
		return true;
	return errno == ENOENT && epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0;
}

void
edge_loop_watch_clear(edge_loop *l, edge_loop_watch *w)
{
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void
edge_loop_timer_set(edge_loop *l, int64_t due_ms, void (*fn)(void *arg), void *arg)
{
	l->timer_due = due_ms;
	l->timer_fn = fn;
	l->timer_arg = arg;
}

void *
edge_loop_slot(edge_loop *l)
{
	return l->slot;
}

void
edge_loop_slot_set(edge_loop *l, void *v, void (*cleanup)(void *v))
{
	l->slot = v;
	l->slot_cleanup = cleanup;
}

/* Milliseconds epoll may sleep: the daemon's timeout or the timer's, whichever is nearer. */
static int
wait_ms(edge_loop *l, int64_t now)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	int64_t                ms = 1000; /* a stop request is noticed within a second anyway */

	if (atomic_load(&l->daemon_due))
		return 0;
	if (MHD_get_timeout(l->mhd, &mhd_ms) == MHD_YES && (int64_t)mhd_ms < ms)
		ms = (int64_t)mhd_ms;
	if (l->timer_due >= 0 && l->timer_due - now < ms)
		ms = l->timer_due > now ? l->timer_due - now : 0;
	return (int)ms;
}

static void *
loop_main(void *arg)
{
	edge_loop         *l = arg;
	struct epoll_event ev[EVENTS_MAX];

	self = l;
	while (!atomic_load(&l->stopping)) {
		int  timeout = wait_ms(l, cm_mono_ms());
		int  n = epoll_wait(l->epfd, ev, EVENTS_MAX, timeout);
		bool run_mhd = n == 0 || timeout == 0;

		for (int i = 0; i < n; i++) {
			edge_loop_watch *w = ev[i].data.ptr;
			if (w == &l->mhd_watch)
				run_mhd = true;
			else if (w == &l->wake_watch)
				run_posts(l);
			else
				w->fn(w->arg, ev[i].events);
		}
		if (l->timer_due >= 0 && cm_mono_ms() >= l->timer_due) {
			l->timer_due = -1;
			l->timer_fn(l->timer_arg);
		}
		if (atomic_exchange(&l->daemon_due, false) || run_mhd)
			(void)MHD_run(l->mhd);
	}
	if (l->slot_cleanup != NULL)
		l->slot_cleanup(l->slot);
	l->slot = NULL;
	self = NULL;
	return NULL;
}

/* ---- all loops ------------------------------------------------------------------------------ */

static int
listen_on(const struct sockaddr *sa)
{
	int       fd, one = 1;
	socklen_t len =
	    sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static cm_err
loop_open(edge_loops *ls, edge_loop *l, unsigned flags, MHD_AccessHandlerCallback handler,
          const struct MHD_OptionItem *options, unsigned connection_max)
{
	struct MHD_OptionItem       opt[OPTIONS_MAX];
	int                         k = 0;
	const union MHD_DaemonInfo *di;
	struct epoll_event          ev;

	for (; options[k].option != MHD_OPTION_END && k < OPTIONS_MAX - 5; k++)
		opt[k] = options[k];
	opt[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, connection_max, NULL};
	opt[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, ls};
	if (ls->listen_fd >= 0)
		opt[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, ls->listen_fd, NULL};
	opt[k] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	l->mhd =
	    MHD_start_daemon(flags | (ls->listen_fd < 0 ? MHD_USE_NO_LISTEN_SOCKET : 0), 0,
	                     on_accept, ls, handler, l->e, MHD_OPTION_ARRAY, opt, MHD_OPTION_END);
	if (l->mhd == NULL ||
	    (di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL ||
	    (l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return CM_EINTERNAL;
	l->mhd_watch.fd = di->epoll_fd;
	l->wake_watch.fd = l->wakefd;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l->mhd_watch};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->mhd_watch.fd, &ev) != 0)
		return CM_EINTERNAL;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l->wake_watch};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0)
		return CM_EINTERNAL;
	return CM_OK;
}

cm_err
edge_loops_start(edge *e, unsigned threads, const struct sockaddr *addr, unsigned flags,
                 void *handler, const struct MHD_OptionItem *options, unsigned connection_max,
                 unsigned per_addr_max)
{
	edge_loops *ls;
	unsigned    share;
	cm_err      err = CM_OK;

	if (threads == 0)
		threads = 1;
	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->loop = calloc(threads, sizeof(*ls->loop))) == NULL) {
		free(ls);
		return CM_ENOMEM;
	}
	e->loops = ls;
	ls->n = (int)threads;
	ls->per_addr_max = per_addr_max;
	pthread_mutex_init(&ls->addr_mu, NULL);
	ls->listen_fd = -1;
	if (addr != NULL && (ls->listen_fd = listen_on(addr)) < 0) {
		err = CM_EEXIST;
		goto out;
	}
	/* As libmicrohttpd shares its cap among its own workers: each loop its part, rounded up. */
	share = (connection_max + threads - 1) / threads;
	for (unsigned i = 0; i < threads; i++) {
		ls->loop[i].e = e;
		ls->loop[i].timer_due = -1;
		ls->loop[i].epfd = ls->loop[i].wakefd = -1;
		pthread_mutex_init(&ls->loop[i].mu, NULL);
	}
	for (unsigned i = 0; i < threads; i++) {
		if ((err = loop_open(ls, &ls->loop[i], flags, (MHD_AccessHandlerCallback)handler,
		                     options, share > 0 ? share : 1)) != CM_OK)
			goto out;
	}
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&ls->loop[i].thread, NULL, loop_main, &ls->loop[i]) != 0) {
			err = CM_ENOMEM;
			goto out;
		}
		ls->loop[i].started = true;
		(void)pthread_setname_np(ls->loop[i].thread, "edge-loop");
	}
out:
	if (err != CM_OK)
		edge_loops_stop(e);
	return err;
}

int
edge_loops_count(const edge *e)
{
	return e->loops != NULL ? e->loops->n : 0;
}

struct MHD_Daemon *
edge_loop_daemon(edge *e, int i)
{
	return e->loops->loop[i].mhd;
}

edge_loop *
edge_loop_pick(edge *e)
{
	edge_loops *ls = e->loops;

	if (ls == NULL || ls->n == 0)
		return NULL;
	return &ls->loop[atomic_fetch_add(&ls->next, 1) % (unsigned)ls->n];
}

typedef struct added_socket {
	edge_loop *l;
	int        fd;
} added_socket;

static void
add_socket_here(void *arg)
{
	added_socket      *a = arg;
	struct sockaddr_in peer;

	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(a->l->mhd, a->fd, (const struct sockaddr *)&peer, sizeof(peer)) !=
	    MHD_YES)
		cm_debug("EDGE-LOOP", "cannot serve socket %d", a->fd);
	free(a);
}

cm_err
edge_loop_add_socket(edge *e, int fd)
{
	added_socket *a;

	if (e->loops == NULL || e->loops->n == 0 || (a = malloc(sizeof(*a))) == NULL)
		return CM_EINTERNAL;
	a->l = &e->loops->loop[0];
	a->fd = fd;
	if (!edge_loop_post(a->l, add_socket_here, a)) {
		free(a);
		return CM_ENOMEM;
	}
	return CM_OK;
}

/* On the loop's thread: the daemon is not thread-safe outside its own loop. */
static void
quiesce_here(void *arg)
{
	edge_loop *l = arg;

	(void)MHD_quiesce_daemon(l->mhd);
}

void
edge_loops_quiesce(edge *e)
{
	edge_loops *ls = e->loops;

	if (ls == NULL)
		return;
	for (int i = 0; i < ls->n; i++)
		if (ls->loop[i].started &&
		    !edge_loop_post(&ls->loop[i], quiesce_here, &ls->loop[i]))
			cm_warn("EDGE-LOOP", "cannot stop loop %d accepting (no memory)", i);
}

void
edge_loops_stop(edge *e)
{
	edge_loops *ls = e->loops;

	if (ls == NULL)
		return;
	for (int i = 0; i < ls->n; i++) {
		edge_loop *l = &ls->loop[i];
		if (l->started) {
			atomic_store(&l->stopping, true);
			(void)!edge_loop_post(l, free, NULL); /* a wake-up */
			pthread_join(l->thread, NULL);
		}
	}
	for (int i = 0; i < ls->n; i++) {
		edge_loop *l = &ls->loop[i];
		/* The listening socket is shared: each daemon gives it back instead of closing it.
		 */
		if (l->mhd != NULL) {
			if (ls->listen_fd >= 0)
				(void)MHD_quiesce_daemon(l->mhd);
			MHD_stop_daemon(l->mhd);
		}
		while (l->posts != NULL) {
			post *p = l->posts;
			l->posts = p->next;
			free(p);
		}
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wakefd >= 0)
			close(l->wakefd);
		pthread_mutex_destroy(&l->mu);
	}
	if (ls->listen_fd >= 0)
		close(ls->listen_fd);
	for (int b = 0; b < ADDR_BUCKETS; b++)
		while (ls->bucket[b] != NULL) {
			addr_count *c = ls->bucket[b];
			ls->bucket[b] = c->next;
			free(c);
		}
	pthread_mutex_destroy(&ls->addr_mu);
	free(ls->loop);
	free(ls);
	e->loops = NULL;
}
