/*
 * admin.h - the small admin HTTP port every service serves.
 *
 * GET /healthz: 200 while the process runs. GET /readyz: 200 when the service's readiness check
 * last passed, else 503 with the reason. GET /metrics: Prometheus text. The readiness check may
 * block (it pings PostgreSQL, Redis, upstreams), so it never runs in an nng callback: a checker
 * thread runs it every interval and stores the verdict that /readyz reads. A process may add a
 * few pages of its own (the edge's /configz), rendered on request like /metrics.
 */
#ifndef CM_ADMIN_H
#define CM_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"

typedef struct cm_admin   cm_admin;
typedef struct cm_metrics cm_metrics;
typedef struct cm_buf     cm_buf;

/* Fills why (a short reason) and returns false when not ready. Runs on the checker thread. */
typedef bool (*cm_ready_fn)(void *arg, char *why, size_t whylen);

/* addr: "127.0.0.1:9101" (host:port). ready may be NULL (always ready). */
CM_MUSTCHECK cm_err cm_admin_start(cm_admin **out, const char *addr, cm_metrics *m,
                                   cm_ready_fn ready, void *arg, int interval_ms);
#define CM_ADMIN_MAX_PAGES 4

/* Renders an extra page into out (capped at 16 MiB) on an nng thread: it must not block. CM_OK
 * answers 200 with the page's content type, anything else 500. */
typedef cm_err (*cm_admin_page_fn)(void *arg, cm_buf *out);

typedef struct cm_admin_page {
	const char      *path; /* "/configz"; the string must outlive the admin */
	const char      *ctype;
	cm_admin_page_fn fn;
	void            *arg; /* must outlive cm_admin_stop */
} cm_admin_page;

/* cm_admin_start with up to CM_ADMIN_MAX_PAGES more GET pages (the array is copied). */
CM_MUSTCHECK cm_err cm_admin_start_pages(cm_admin **out, const char *addr, cm_metrics *m,
                                         cm_ready_fn ready, void *arg, int interval_ms,
                                         const cm_admin_page *pages, size_t n_pages);
/* Makes /readyz answer 503 "draining" from now on (graceful shutdown). */
void cm_admin_set_draining(cm_admin *a);
/* Runs the check now on the caller's thread and stores the verdict. */
bool cm_admin_check_now(cm_admin *a);
void cm_admin_stop(cm_admin *a);

#endif
