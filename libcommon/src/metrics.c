/*
 * metrics.c - Prometheus registry: counters, gauges, latency histograms, process figures.
 *
 * DESIGN: a registry is a singly linked list of series guarded by one mutex that only
 * registration and rendering take. Series with the same name are kept next to each other
 * (a new label set is inserted after the last series of its name), so rendering writes HELP and
 * TYPE once per name by comparing with the previous series. Values are C11 atomics updated with
 * relaxed ordering: a scrape may see a histogram mid-update, but never a torn number. A
 * histogram stores per-bucket (not cumulative) counts plus an overflow slot; the renderer sums
 * them, and _count is that same sum, so +Inf and _count always agree. The sum is kept in whole
 * nanoseconds (an atomic add, no CAS loop). Process figures come from /proc/self at render time.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/metrics.h"

#define CM_HIST_NB 16

static const double cm_hist_bounds[CM_HIST_NB] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

typedef enum cm_metric_kind {
	CM_METRIC_COUNTER,
	CM_METRIC_GAUGE,
	CM_METRIC_HISTOGRAM,
} cm_metric_kind;

struct cm_counter {
	atomic_uint_least64_t v;
};

struct cm_gauge {
	atomic_int_least64_t v;
};

struct cm_histogram {
	atomic_uint_least64_t bucket[CM_HIST_NB + 1]; /* last: above the largest bound */
	atomic_uint_least64_t sum_ns;
};

typedef struct cm_metric {
	struct cm_metric *next;
	cm_metric_kind    kind;
	char             *name; /* prefixed */
	char             *help;
	char             *labels; /* "" when none */
	union {
		struct cm_counter   c;
		struct cm_gauge     g;
		struct cm_histogram h;
	} u;
} cm_metric;

struct cm_metrics {
	pthread_mutex_t mu;
	char           *prefix;
	cm_metric      *head;
};

static const char *const cm_kind_names[] = {"counter", "gauge", "histogram"};

static char *
cm_metrics_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char  *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

cm_metrics *
cm_metrics_alloc(const char *prefix)
{
	cm_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->prefix = cm_metrics_strdup(prefix != NULL ? prefix : "");
	if (m->prefix == NULL || pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m->prefix);
		free(m);
		return NULL;
	}
	return m;
}

static void
cm_metric_free(cm_metric *x)
{
	free(x->name);
	free(x->help);
	free(x->labels);
	free(x);
}

void
cm_metrics_free(cm_metrics *m)
{
	cm_metric *x, *next;

	if (m == NULL)
		return;
	for (x = m->head; x != NULL; x = next) {
		next = x->next;
		cm_metric_free(x);
	}
	pthread_mutex_destroy(&m->mu);
	free(m->prefix);
	free(m);
}

static bool
cm_metric_name_ok(const char *s)
{
	if (*s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ':'))
			return false;
	}
	return true;
}

/* Finds or registers name+labels; NULL on allocation failure or misuse (logged). */
static cm_metric *
cm_metrics_get(cm_metrics *m, cm_metric_kind kind, const char *name, const char *help,
               const char *labels)
{
	cm_metric *x, *last_same = NULL, *tail = NULL, *nx = NULL;
	size_t     plen, nlen;

	if (m == NULL || name == NULL)
		return NULL;
	if (labels == NULL)
		labels = "";
	pthread_mutex_lock(&m->mu);
	plen = strlen(m->prefix);
	nlen = strlen(name);
	for (x = m->head; x != NULL; x = x->next) {
		tail = x;
		if (strncmp(x->name, m->prefix, plen) != 0 || strcmp(x->name + plen, name) != 0)
			continue;
		if (x->kind != kind) {
			cm_error("CM-METRIC-KIND", "metric %s%s registered as %s, asked as %s",
			         m->prefix, name, cm_kind_names[x->kind], cm_kind_names[kind]);
			x = NULL;
			goto out;
		}
		if (strcmp(x->labels, labels) == 0)
			goto out;
		last_same = x;
	}
	nx = calloc(1, sizeof(*nx));
	if (nx == NULL)
		goto out;
	nx->kind = kind;
	nx->name = malloc(plen + nlen + 1);
	nx->help = cm_metrics_strdup(help != NULL ? help : "");
	nx->labels = cm_metrics_strdup(labels);
	if (nx->name == NULL || nx->help == NULL || nx->labels == NULL)
		goto fail;
	memcpy(nx->name, m->prefix, plen);
	memcpy(nx->name + plen, name, nlen + 1);
	if (!cm_metric_name_ok(nx->name)) {
		cm_error("CM-METRIC-NAME", "invalid metric name %s", nx->name);
		goto fail;
	}
	if (last_same != NULL) {
		nx->next = last_same->next;
		last_same->next = nx;
	} else if (tail != NULL) {
		tail->next = nx;
	} else {
		m->head = nx;
	}
	x = nx;
	nx = NULL;
	goto out;
fail:
	x = NULL;
out:
	pthread_mutex_unlock(&m->mu);
	if (nx != NULL)
		cm_metric_free(nx);
	return x;
}

cm_counter *
cm_metrics_counter(cm_metrics *m, const char *name, const char *help, const char *labels)
{
	cm_metric *x = cm_metrics_get(m, CM_METRIC_COUNTER, name, help, labels);

	return x != NULL ? &x->u.c : NULL;
}

cm_gauge *
cm_metrics_gauge(cm_metrics *m, const char *name, const char *help, const char *labels)
{
	cm_metric *x = cm_metrics_get(m, CM_METRIC_GAUGE, name, help, labels);

	return x != NULL ? &x->u.g : NULL;
}

cm_histogram *
cm_metrics_histogram(cm_metrics *m, const char *name, const char *help, const char *labels)
{
	cm_metric *x = cm_metrics_get(m, CM_METRIC_HISTOGRAM, name, help, labels);

	return x != NULL ? &x->u.h : NULL;
}

void
cm_counter_add(cm_counter *c, uint64_t n)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void
cm_gauge_set(cm_gauge *g, int64_t v)
{
	if (g != NULL)
		atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void
cm_gauge_add(cm_gauge *g, int64_t delta)
{
	if (g != NULL)
		atomic_fetch_add_explicit(&g->v, delta, memory_order_relaxed);
}

void
cm_histogram_observe(cm_histogram *h, double seconds)
{
	int      i = 0;
	uint64_t ns;

	if (h == NULL || isnan(seconds))
		return;
	if (seconds < 0)
		seconds = 0;
	while (i < CM_HIST_NB && seconds > cm_hist_bounds[i])
		i++;
	ns = seconds >= 1.8e10 ? (uint64_t)1.8e19 : (uint64_t)(seconds * 1e9);
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

/* ---- rendering --------------------------------------------------------------------------- */

static cm_err
cm_render_help(cm_buf *out, const cm_metric *x)
{
	cm_err err = cm_buf_printf(out, "# HELP %s ", x->name);

	for (const char *p = x->help; err == CM_OK && *p; p++) {
		if (*p == '\\')
			err = cm_buf_appends(out, "\\\\");
		else if (*p == '\n')
			err = cm_buf_appends(out, "\\n");
		else
			err = cm_buf_append(out, p, 1);
	}
	if (err == CM_OK)
		err = cm_buf_printf(out, "\n# TYPE %s %s\n", x->name, cm_kind_names[x->kind]);
	return err;
}

/* name{labels} or name{labels,extra} or name{extra} or name. */
static cm_err
cm_render_series(cm_buf *out, const char *name, const char *suffix, const char *labels,
                 const char *extra)
{
	bool has_l = labels[0] != '\0', has_e = extra != NULL && extra[0] != '\0';

	if (!has_l && !has_e)
		return cm_buf_printf(out, "%s%s ", name, suffix);
	return cm_buf_printf(out, "%s%s{%s%s%s} ", name, suffix, labels, has_l && has_e ? "," : "",
	                     has_e ? extra : "");
}

static cm_err
cm_render_histogram(cm_buf *out, const cm_metric *x)
{
	const struct cm_histogram *h = &x->u.h;
	uint64_t                   cum = 0, sum_ns;
	char                       le[32];
	cm_err                     err = CM_OK;

	for (int i = 0; i <= CM_HIST_NB && err == CM_OK; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (i < CM_HIST_NB)
			(void)snprintf(le, sizeof(le), "le=\"%g\"", cm_hist_bounds[i]);
		else
			(void)snprintf(le, sizeof(le), "le=\"+Inf\"");
		err = cm_render_series(out, x->name, "_bucket", x->labels, le);
		if (err == CM_OK)
			err = cm_buf_printf(out, "%llu\n", (unsigned long long)cum);
	}
	sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
	if (err == CM_OK)
		err = cm_render_series(out, x->name, "_sum", x->labels, NULL);
	if (err == CM_OK)
		err =
		    cm_buf_printf(out, "%llu.%09llu\n", (unsigned long long)(sum_ns / 1000000000u),
		                  (unsigned long long)(sum_ns % 1000000000u));
	if (err == CM_OK)
		err = cm_render_series(out, x->name, "_count", x->labels, NULL);
	if (err == CM_OK)
		err = cm_buf_printf(out, "%llu\n", (unsigned long long)cum);
	return err;
}

static cm_err
cm_render_metric(cm_buf *out, const cm_metric *x)
{
	cm_err err;

	switch (x->kind) {
	case CM_METRIC_COUNTER:
		err = cm_render_series(out, x->name, "", x->labels, NULL);
		if (err == CM_OK)
			err = cm_buf_printf(out, "%llu\n",
			                    (unsigned long long)atomic_load_explicit(
			                        &x->u.c.v, memory_order_relaxed));
		return err;
	case CM_METRIC_GAUGE:
		err = cm_render_series(out, x->name, "", x->labels, NULL);
		if (err == CM_OK)
			err = cm_buf_printf(
			    out, "%lld\n",
			    (long long)atomic_load_explicit(&x->u.g.v, memory_order_relaxed));
		return err;
	case CM_METRIC_HISTOGRAM:
		return cm_render_histogram(out, x);
	}
	return CM_EINTERNAL;
}

/* Reads a small /proc file into buf; false when it cannot. */
static bool
cm_read_small(const char *path, char *buf, size_t len)
{
	FILE  *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

static long long
cm_boot_time(void)
{
	char        buf[8192];
	const char *p;

	if (!cm_read_small("/proc/stat", buf, sizeof(buf)))
		return 0;
	p = strstr(buf, "\nbtime ");
	if (p == NULL)
		return 0;
	return strtoll(p + 7, NULL, 10);
}

static int
cm_count_fds(void)
{
	DIR           *d = opendir("/proc/self/fd");
	struct dirent *e;
	int            n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not counting the directory's own descriptor */
}

static cm_err
cm_render_process(cm_buf *out)
{
	char               stat[1024], statm[256];
	const char        *p;
	unsigned long      utime = 0, stime = 0;
	unsigned long long starttime = 0;
	unsigned long      vm_pages = 0, rss_pages = 0;
	long               tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double             start_s = 0;
	int                fds = cm_count_fds();
	cm_err             err;

	if (tck <= 0)
		tck = 100;
	if (page <= 0)
		page = 4096;
	if (cm_read_small("/proc/self/stat", stat, sizeof(stat)) &&
	    (p = strrchr(stat, ')')) != NULL) {
		/* Fields 3.. after the command name: state ... utime(14) stime(15) ...
		 * starttime(22). */
		if (sscanf(p + 2,
		           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
		           "%*d %*d %llu",
		           &utime, &stime, &starttime) != 3) {
			utime = stime = 0;
			starttime = 0;
		}
	}
	if (cm_read_small("/proc/self/statm", statm, sizeof(statm)) &&
	    sscanf(statm, "%lu %lu", &vm_pages, &rss_pages) != 2)
		vm_pages = rss_pages = 0;
	if (starttime > 0)
		start_s = (double)cm_boot_time() + (double)starttime / (double)tck;

	err = cm_buf_printf(
	    out,
	    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
	    "# TYPE process_cpu_seconds_total counter\n"
	    "process_cpu_seconds_total %.2f\n"
	    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %llu\n"
	    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
	    "# TYPE process_virtual_memory_bytes gauge\n"
	    "process_virtual_memory_bytes %llu\n"
	    "# HELP process_open_fds Number of open file descriptors.\n"
	    "# TYPE process_open_fds gauge\n"
	    "process_open_fds %d\n"
	    "# HELP process_start_time_seconds Start time of the process since unix epoch in "
	    "seconds.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %.2f\n",
	    (double)(utime + stime) / (double)tck,
	    (unsigned long long)rss_pages * (unsigned long long)page,
	    (unsigned long long)vm_pages * (unsigned long long)page, fds, start_s);
	return err;
}

cm_err
cm_metrics_render(cm_metrics *m, cm_buf *out)
{
	const cm_metric *x, *prev = NULL;
	cm_err           err = CM_OK;

	if (m != NULL) {
		pthread_mutex_lock(&m->mu);
		for (x = m->head; x != NULL && err == CM_OK; prev = x, x = x->next) {
			if (prev == NULL || strcmp(prev->name, x->name) != 0)
				err = cm_render_help(out, x);
			if (err == CM_OK)
				err = cm_render_metric(out, x);
		}
		pthread_mutex_unlock(&m->mu);
	}
	if (err == CM_OK)
		err = cm_render_process(out);
	return err;
}
