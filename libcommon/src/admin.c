/*
 * admin.c - /healthz, /readyz and /metrics on nng's HTTP server.
 *
 * DESIGN: three GET handlers answer synchronously from state that is cheap to read: /healthz is
 * constant, /readyz reads the last verdict (under a short mutex) and the draining flag, /metrics
 * renders the registry (atomics plus a few /proc reads). The readiness check itself may block, so
 * it only ever runs on the checker thread (every interval_ms, woken early by stop) or on the
 * thread that calls cm_admin_check_now(); a second mutex serialises those two callers so the
 * service's check function never runs twice at once.
 *
 * Lifetime: nng may still be running a handler callback after the handler was removed, and a
 * handler's data is released through its destructor once nng drops its last reference. So the
 * cm_admin is reference counted: the owner holds one reference and each handler holds one; the
 * memory goes when the last is released. nng_http_server_hold() shares one server per address,
 * so cm_admin can also add its handlers to a server another component (the edge) already runs;
 * stop removes only what this module added.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"

#define CM_ADMIN_WHY_MAX 160
#define CM_ADMIN_METRICS_MAX (16u * 1024u * 1024u)
#define CM_ADMIN_DEFAULT_MS 1000
#define CM_ADMIN_N_FIXED 3
#define CM_ADMIN_N_HANDLERS (CM_ADMIN_N_FIXED + CM_ADMIN_MAX_PAGES)

/* A page's handler data: the page and its admin (for the reference it holds). */
typedef struct cm_admin_slot {
	cm_admin     *a;
	cm_admin_page page;
} cm_admin_slot;

struct cm_admin {
	atomic_int        refs;
	nng_url          *url;
	nng_http_server  *srv;
	bool              started;
	nng_http_handler *h[CM_ADMIN_N_HANDLERS];
	bool              added[CM_ADMIN_N_HANDLERS];
	cm_admin_slot     pages[CM_ADMIN_MAX_PAGES];

	cm_metrics *metrics;
	cm_ready_fn ready;
	void       *arg;
	int         interval_ms;

	pthread_mutex_t check_mu; /* serialises runs of ready() */
	pthread_mutex_t mu;       /* verdict, stop flag */
	pthread_cond_t  cv;
	bool            stop;
	bool            ok;
	char            why[CM_ADMIN_WHY_MAX];
	atomic_bool     draining;
	pthread_t       thr;
	bool            thr_started;
	bool            sync_ok; /* mutexes and cv initialised */
};

static void
cm_admin_rele(void *arg)
{
	cm_admin *a = arg;

	if (atomic_fetch_sub(&a->refs, 1) != 1)
		return;
	if (a->sync_ok) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		pthread_mutex_destroy(&a->check_mu);
	}
	if (a->url != NULL)
		nng_url_free(a->url);
	free(a);
}

/* ---- HTTP handlers (nng threads: never block) ---------------------------------------------- */

static void
cm_admin_reply(nng_aio *aio, uint16_t status, const char *ctype, const void *body, size_t len)
{
	nng_http_res *res = NULL;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0)
		goto out;
	if ((rv = nng_http_res_set_status(res, status)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0)
		goto out;
	nng_aio_set_output(aio, 0, res);
	res = NULL;
out:
	if (res != NULL)
		nng_http_res_free(res);
	nng_aio_finish(aio, rv);
}

static cm_admin *
cm_admin_of(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void
cm_admin_healthz(nng_aio *aio)
{
	cm_admin_reply(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void
cm_admin_readyz(nng_aio *aio)
{
	cm_admin *a = cm_admin_of(aio);
	char      body[CM_ADMIN_WHY_MAX + 32];
	bool      ok;
	int       n;

	if (atomic_load(&a->draining)) {
		cm_admin_reply(aio, 503, "text/plain; charset=utf-8", "draining\n", 9);
		return;
	}
	pthread_mutex_lock(&a->mu);
	ok = a->ok;
	if (ok)
		n = snprintf(body, sizeof(body), "ok\n");
	else
		n = snprintf(body, sizeof(body), "not ready: %s\n", a->why);
	pthread_mutex_unlock(&a->mu);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	cm_admin_reply(aio, ok ? 200 : 503, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
cm_admin_metrics(nng_aio *aio)
{
	cm_admin *a = cm_admin_of(aio);
	cm_buf    b;

	cm_buf_init(&b, CM_ADMIN_METRICS_MAX);
	if (cm_metrics_render(a->metrics, &b) != CM_OK) {
		cm_buf_fini(&b);
		cm_admin_reply(aio, 500, "text/plain; charset=utf-8", "metrics failed\n", 15);
		return;
	}
	cm_admin_reply(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
	               b.len);
	cm_buf_fini(&b);
}

static void
cm_admin_page_cb(nng_aio *aio)
{
	cm_admin_slot *slot = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	cm_buf         b;

	cm_buf_init(&b, CM_ADMIN_METRICS_MAX);
	if (slot->page.fn(slot->page.arg, &b) != CM_OK) {
		cm_buf_fini(&b);
		cm_admin_reply(aio, 500, "text/plain; charset=utf-8", "page failed\n", 12);
		return;
	}
	cm_admin_reply(aio, 200, slot->page.ctype, b.data ? b.data : "", b.len);
	cm_buf_fini(&b);
}

static void
cm_admin_slot_rele(void *arg)
{
	cm_admin_rele(((cm_admin_slot *)arg)->a);
}

/* ---- readiness -------------------------------------------------------------------------- */

static bool
cm_admin_run_check(cm_admin *a)
{
	char why[CM_ADMIN_WHY_MAX] = "";
	bool ok, was;

	pthread_mutex_lock(&a->check_mu);
	ok = a->ready != NULL ? a->ready(a->arg, why, sizeof(why)) : true;
	pthread_mutex_unlock(&a->check_mu);
	why[sizeof(why) - 1] = '\0';
	if (!ok && why[0] == '\0')
		cm_strlcpy(why, "check failed", sizeof(why));

	pthread_mutex_lock(&a->mu);
	was = a->ok;
	a->ok = ok;
	cm_strlcpy(a->why, ok ? "" : why, sizeof(a->why));
	pthread_mutex_unlock(&a->mu);
	if (ok && !was)
		cm_info("CM-ADMIN-READY", "ready");
	else if (!ok && was)
		cm_warn("CM-ADMIN-NOT-READY", "not ready: %s", why);
	return ok;
}

static void *
cm_admin_checker(void *arg)
{
	cm_admin       *a = arg;
	struct timespec until;

	for (;;) {
		(void)cm_admin_run_check(a);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += a->interval_ms / 1000;
		until.tv_nsec += (long)(a->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&a->mu);
		while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
			;
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		pthread_mutex_unlock(&a->mu);
	}
	return NULL;
}

/* ---- start / stop ----------------------------------------------------------------------- */

static cm_err
cm_admin_nng_err(const char *what, const char *addr, int rv)
{
	cm_error("CM-ADMIN-FAIL", "admin %s on %s: %s", what, addr, nng_strerror(rv));
	switch (rv) {
	case NNG_ENOMEM:
		return CM_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return CM_EINVAL;
	default:
		return CM_EUNAVAIL;
	}
}

static cm_err
cm_admin_sync_init(cm_admin *a)
{
	pthread_condattr_t ca;
	bool               ca_ok = false, mu_ok = false, check_ok = false;
	cm_err             err = CM_ENOMEM;

	if (pthread_condattr_init(&ca) != 0)
		goto out;
	ca_ok = true;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0)
		goto out;
	if (pthread_mutex_init(&a->check_mu, NULL) != 0)
		goto out;
	check_ok = true;
	if (pthread_mutex_init(&a->mu, NULL) != 0)
		goto out;
	mu_ok = true;
	if (pthread_cond_init(&a->cv, &ca) != 0)
		goto out;
	a->sync_ok = true;
	err = CM_OK;
out:
	if (err != CM_OK) {
		if (mu_ok)
			pthread_mutex_destroy(&a->mu);
		if (check_ok)
			pthread_mutex_destroy(&a->check_mu);
	}
	if (ca_ok)
		pthread_condattr_destroy(&ca);
	return err;
}

static void
cm_admin_teardown(cm_admin *a)
{
	if (a->thr_started) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thr, NULL);
		a->thr_started = false;
	}
	for (int i = 0; i < CM_ADMIN_N_HANDLERS; i++) {
		if (a->h[i] == NULL)
			continue;
		/* Removing hands the server's reference back to us; a handler the server does not
		 * hold (never added) is ours already. nng keeps it alive while a callback runs. */
		if (!a->added[i] || nng_http_server_del_handler(a->srv, a->h[i]) == 0)
			nng_http_handler_free(a->h[i]);
		a->h[i] = NULL;
		a->added[i] = false;
	}
	if (a->srv != NULL) {
		if (a->started)
			nng_http_server_stop(a->srv);
		nng_http_server_release(a->srv);
		a->srv = NULL;
		a->started = false;
	}
	cm_admin_rele(a);
}

/* Allocates handler i for path with callback cb and data (released through rele), and adds it. */
static cm_err
cm_admin_add(cm_admin *a, int i, const char *addr, const char *path, void (*cb)(nng_aio *),
             void *data, void (*rele)(void *))
{
	int rv;

	if ((rv = nng_http_handler_alloc(&a->h[i], path, cb)) != 0 ||
	    (rv = nng_http_handler_set_method(a->h[i], "GET")) != 0)
		return cm_admin_nng_err("handler", addr, rv);
	atomic_fetch_add(&a->refs, 1);
	if ((rv = nng_http_handler_set_data(a->h[i], data, rele)) != 0) {
		atomic_fetch_sub(&a->refs, 1);
		return cm_admin_nng_err("handler", addr, rv);
	}
	if ((rv = nng_http_server_add_handler(a->srv, a->h[i])) != 0)
		return cm_admin_nng_err(path, addr, rv);
	a->added[i] = true;
	return CM_OK;
}

cm_err
cm_admin_start(cm_admin **out, const char *addr, cm_metrics *m, cm_ready_fn ready, void *arg,
               int interval_ms)
{
	return cm_admin_start_pages(out, addr, m, ready, arg, interval_ms, NULL, 0);
}

cm_err
cm_admin_start_pages(cm_admin **out, const char *addr, cm_metrics *m, cm_ready_fn ready, void *arg,
                     int interval_ms, const cm_admin_page *pages, size_t n_pages)
{
	static const struct {
		const char *path;
		void (*cb)(nng_aio *);
	} routes[CM_ADMIN_N_FIXED] = {
	    {"/healthz", cm_admin_healthz},
	    {"/readyz", cm_admin_readyz},
	    {"/metrics", cm_admin_metrics},
	};
	cm_admin *a = NULL;
	cm_buf    url;
	cm_err    err;
	int       rv;

	*out = NULL;
	cm_buf_init(&url, 512);
	if (addr == NULL || addr[0] == '\0' || n_pages > CM_ADMIN_MAX_PAGES) {
		err = CM_EINVAL;
		goto out;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	atomic_init(&a->refs, 1);
	atomic_init(&a->draining, false);
	a->metrics = m;
	a->ready = ready;
	a->arg = arg;
	a->interval_ms = interval_ms > 0 ? interval_ms : CM_ADMIN_DEFAULT_MS;
	cm_strlcpy(a->why, "starting", sizeof(a->why));
	if ((err = cm_admin_sync_init(a)) != CM_OK)
		goto out;

	err = cm_buf_printf(&url, "%s%s", strstr(addr, "://") ? "" : "http://", addr);
	if (err != CM_OK)
		goto out;
	if ((rv = nng_url_parse(&a->url, url.data)) != 0) {
		err = cm_admin_nng_err("url", addr, rv);
		goto out;
	}
	if ((rv = nng_http_server_hold(&a->srv, a->url)) != 0) {
		err = cm_admin_nng_err("server", addr, rv);
		goto out;
	}
	for (int i = 0; i < CM_ADMIN_N_FIXED; i++) {
		if ((err = cm_admin_add(a, i, addr, routes[i].path, routes[i].cb, a,
		                        cm_admin_rele)) != CM_OK)
			goto out;
	}
	for (size_t i = 0; i < n_pages; i++) {
		a->pages[i].a = a;
		a->pages[i].page = pages[i];
		if ((err = cm_admin_add(a, CM_ADMIN_N_FIXED + (int)i, addr, pages[i].path,
		                        cm_admin_page_cb, &a->pages[i], cm_admin_slot_rele)) !=
		    CM_OK)
			goto out;
	}
	if ((rv = nng_http_server_start(a->srv)) != 0) {
		err = cm_admin_nng_err("listen", addr, rv);
		goto out;
	}
	a->started = true;
	if (pthread_create(&a->thr, NULL, cm_admin_checker, a) != 0) {
		err = CM_ENOMEM;
		goto out;
	}
	a->thr_started = true;
	cm_info("CM-ADMIN-START", "admin listening on %s", addr);
	*out = a;
	a = NULL;
	err = CM_OK;
out:
	if (a != NULL)
		cm_admin_teardown(a);
	cm_buf_fini(&url);
	return err;
}

void
cm_admin_set_draining(cm_admin *a)
{
	if (a != NULL)
		atomic_store(&a->draining, true);
}

bool
cm_admin_check_now(cm_admin *a)
{
	if (a == NULL)
		return false;
	return cm_admin_run_check(a);
}

void
cm_admin_stop(cm_admin *a)
{
	if (a != NULL)
		cm_admin_teardown(a);
}
