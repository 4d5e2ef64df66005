/*
 * metrics.h - a Prometheus metrics registry.
 *
 * Metrics are registered once (under a mutex) and updated lock-free with atomics on hot paths.
 * A metric is identified by name plus a label string in Prometheus syntax (`method="auth.Login"`);
 * asking again for the same name and labels returns the same object, so callers may look up per
 * request when labels vary (a lookup costs one mutex and a short list walk). Rendering adds
 * process figures read from /proc: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_start_time_seconds.
 */
#ifndef CM_METRICS_H
#define CM_METRICS_H

#include <stdint.h>

#include "cm/buf.h"
#include "cm/err.h"

typedef struct cm_metrics   cm_metrics;
typedef struct cm_counter   cm_counter;
typedef struct cm_gauge     cm_gauge;
typedef struct cm_histogram cm_histogram;

/* `prefix` is prepended to every metric name registered ("auth_" -> auth_logins_total);
 * process_* metrics are unprefixed. */
cm_metrics *cm_metrics_alloc(const char *prefix);
void        cm_metrics_free(cm_metrics *m);

/* These return NULL only on allocation failure; every update function accepts NULL (no-op).
 * (They also return NULL, and log CM-METRIC-NAME / CM-METRIC-KIND, on a programming error: a name
 * that is not a valid Prometheus name, or a name already registered as another metric type.)
 * `labels` may be NULL or "" for none; the first registration's `help` is kept. */
cm_counter *cm_metrics_counter(cm_metrics *m, const char *name, const char *help,
                               const char *labels);
cm_gauge   *cm_metrics_gauge(cm_metrics *m, const char *name, const char *help, const char *labels);
/* Latency histogram in seconds with fixed buckets 0.5ms .. 60s. */
cm_histogram *cm_metrics_histogram(cm_metrics *m, const char *name, const char *help,
                                   const char *labels);

void cm_counter_add(cm_counter *c, uint64_t n);
void cm_gauge_set(cm_gauge *g, int64_t v);
void cm_gauge_add(cm_gauge *g, int64_t delta);
void cm_histogram_observe(cm_histogram *h, double seconds);

/* Text exposition format 0.0.4, appended to out. */
CM_MUSTCHECK cm_err cm_metrics_render(cm_metrics *m, cm_buf *out);

#endif
