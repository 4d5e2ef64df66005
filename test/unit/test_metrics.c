/*
 * test_metrics.c - registry identity, counters/gauges/histograms rendered in the text format,
 * HELP/TYPE once per name, cumulative buckets, process_* figures, concurrent updates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "cm/metrics.h"

/* Renders m into a fresh string (caller frees). */
static char *
render(cm_metrics *m)
{
	cm_buf b;
	char  *s = NULL;

	cm_buf_init(&b, 1 << 20);
	assert_int_equal(cm_metrics_render(m, &b), CM_OK);
	assert_int_equal(cm_buf_take(&b, &s, NULL), CM_OK);
	return s;
}

/* The value of the line that starts with exactly `series` followed by a space; fails if absent. */
static double
value_of(const char *text, const char *series)
{
	size_t      n = strlen(series);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	fail_msg("series not found: %s", series);
	return -1;
}

static int
count_substr(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_counter_and_identity(void **state)
{
	cm_metrics *m = cm_metrics_alloc("auth_");
	cm_counter *a, *a2, *b;
	char       *s;

	assert_non_null(m);
	a = cm_metrics_counter(m, "logins_total", "Logins.", "result=\"ok\"");
	a2 = cm_metrics_counter(m, "logins_total", "Logins.", "result=\"ok\"");
	b = cm_metrics_counter(m, "logins_total", "Logins.", "result=\"fail\"");
	assert_non_null(a);
	assert_ptr_equal(a, a2);
	assert_ptr_not_equal(a, b);
	cm_counter_add(a, 2);
	cm_counter_add(a2, 1);
	cm_counter_add(b, 7);
	s = render(m);
	assert_true(value_of(s, "auth_logins_total{result=\"ok\"}") == 3);
	assert_true(value_of(s, "auth_logins_total{result=\"fail\"}") == 7);
	assert_int_equal(count_substr(s, "# HELP auth_logins_total Logins.\n"), 1);
	assert_int_equal(count_substr(s, "# TYPE auth_logins_total counter\n"), 1);
	free(s);
	cm_metrics_free(m);
}

static void
test_help_type_once_and_grouped(void **state)
{
	cm_metrics *m = cm_metrics_alloc("x_");
	char       *s, *help, *first, *other, *second;

	/* Interleaved registration: the two label sets of x_req_total must still be adjacent. */
	cm_counter_add(cm_metrics_counter(m, "req_total", "Requests.", "m=\"a\""), 1);
	cm_gauge_set(cm_metrics_gauge(m, "inflight", "In flight.", NULL), 1);
	cm_counter_add(cm_metrics_counter(m, "req_total", "Requests.", "m=\"b\""), 1);
	s = render(m);
	assert_int_equal(count_substr(s, "# TYPE x_req_total counter"), 1);
	assert_int_equal(count_substr(s, "# HELP x_req_total "), 1);
	help = strstr(s, "# HELP x_req_total");
	first = strstr(s, "x_req_total{m=\"a\"} 1");
	second = strstr(s, "x_req_total{m=\"b\"} 1");
	other = strstr(s, "# TYPE x_inflight gauge");
	assert_non_null(help);
	assert_non_null(first);
	assert_non_null(second);
	assert_non_null(other);
	assert_true(help < first && first < second && second < other);
	free(s);
	cm_metrics_free(m);
}

static void
test_gauge(void **state)
{
	cm_metrics *m = cm_metrics_alloc(NULL);
	cm_gauge   *g = cm_metrics_gauge(m, "conns", "Open connections.", "");
	char       *s;

	cm_gauge_set(g, 10);
	cm_gauge_add(g, -15);
	s = render(m);
	assert_non_null(strstr(s, "# TYPE conns gauge\n"));
	assert_non_null(strstr(s, "\nconns -5\n"));
	free(s);
	cm_metrics_free(m);
}

static void
test_histogram_buckets_cumulative(void **state)
{
	static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	                                  "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
	                                  "5",      "10",    "30",     "60",    "+Inf"};
	cm_metrics              *m = cm_metrics_alloc("svc_");
	cm_histogram *h = cm_metrics_histogram(m, "rpc_seconds", "RPC latency.", "method=\"a.B\"");
	char         *s, series[128];
	double        prev = 0;

	assert_non_null(h);
	cm_histogram_observe(h, 0.0003); /* le 0.0005 */
	cm_histogram_observe(h, 0.003);  /* le 0.005 */
	cm_histogram_observe(h, 0.003);
	cm_histogram_observe(h, 0.5); /* exactly on a bound: counts in le="0.5" */
	cm_histogram_observe(h, 0.7); /* le 1 */
	cm_histogram_observe(h, 100); /* only +Inf */
	cm_histogram_observe(h, -1);  /* clamped to 0 */
	s = render(m);
	assert_int_equal(count_substr(s, "# TYPE svc_rpc_seconds histogram\n"), 1);
	for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
		double v;
		snprintf(series, sizeof(series), "svc_rpc_seconds_bucket{method=\"a.B\",le=\"%s\"}",
		         les[i]);
		v = value_of(s, series);
		assert_true(v >= prev); /* cumulative */
		prev = v;
	}
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"0.0005\"}") == 2);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"0.0025\"}") == 2);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"0.005\"}") == 4);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"0.25\"}") == 4);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"0.5\"}") == 5);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"1\"}") == 6);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"60\"}") == 6);
	assert_true(value_of(s, "svc_rpc_seconds_bucket{method=\"a.B\",le=\"+Inf\"}") == 7);
	assert_true(value_of(s, "svc_rpc_seconds_count{method=\"a.B\"}") == 7);
	{
		double sum = value_of(s, "svc_rpc_seconds_sum{method=\"a.B\"}");
		assert_true(sum > 101.2058 && sum < 101.2064);
	}
	free(s);
	cm_metrics_free(m);
}

static void
test_histogram_without_labels(void **state)
{
	cm_metrics   *m = cm_metrics_alloc("");
	cm_histogram *h = cm_metrics_histogram(m, "lat", "Latency.", NULL);
	char         *s;

	cm_histogram_observe(h, 0.01);
	s = render(m);
	assert_true(value_of(s, "lat_bucket{le=\"0.01\"}") == 1);
	assert_true(value_of(s, "lat_bucket{le=\"0.005\"}") == 0);
	assert_true(value_of(s, "lat_count") == 1);
	assert_non_null(strstr(s, "\nlat_sum 0.01"));
	free(s);
	cm_metrics_free(m);
}

static void
test_process_metrics(void **state)
{
	char  *s = render(NULL);
	double start;

	assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
	assert_true(value_of(s, "process_cpu_seconds_total") >= 0);
	assert_true(value_of(s, "process_resident_memory_bytes") > 100000);
	assert_true(value_of(s, "process_virtual_memory_bytes") >
	            value_of(s, "process_resident_memory_bytes"));
	assert_true(value_of(s, "process_open_fds") >= 3);
	start = value_of(s, "process_start_time_seconds");
	assert_true(start > (double)time(NULL) - 3600 && start <= (double)time(NULL) + 2);
	free(s);
}

static void
test_misuse_and_null(void **state)
{
	cm_metrics *m = cm_metrics_alloc("p_");
	char       *s;

	assert_non_null(cm_metrics_counter(m, "thing", "A thing.", NULL));
	assert_null(cm_metrics_gauge(m, "thing", "Same name, other type.", NULL));
	assert_null(cm_metrics_counter(m, "bad name", "Spaces.", NULL));
	assert_null(cm_metrics_counter(m, "bad-name", "Dash.", NULL));
	assert_null(cm_metrics_counter(NULL, "x", "No registry.", NULL));
	/* Updates through NULL are no-ops. */
	cm_counter_add(NULL, 1);
	cm_gauge_set(NULL, 1);
	cm_gauge_add(NULL, 1);
	cm_histogram_observe(NULL, 1);
	cm_metrics_free(NULL);
	s = render(m);
	assert_null(strstr(s, "bad"));
	assert_int_equal(count_substr(s, "# TYPE p_thing "), 1);
	free(s);
	cm_metrics_free(m);
}

static void
test_help_escaped(void **state)
{
	cm_metrics *m = cm_metrics_alloc("");
	char       *s;

	assert_non_null(cm_metrics_counter(m, "esc_total", "line1\nback\\slash", NULL));
	s = render(m);
	assert_non_null(strstr(s, "# HELP esc_total line1\\nback\\\\slash\n"));
	free(s);
	cm_metrics_free(m);
}

struct worker {
	cm_metrics *m;
};

static void *
hammer(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 50000; i++) {
		/* Lookup per call, as callers with varying labels do. */
		cm_counter_add(cm_metrics_counter(w->m, "hits_total", "Hits.", NULL), 1);
		cm_histogram_observe(cm_metrics_histogram(w->m, "lat", "Latency.", NULL), 0.002);
	}
	return NULL;
}

static void
test_concurrent_updates(void **state)
{
	cm_metrics   *m = cm_metrics_alloc("c_");
	pthread_t     t[4];
	struct worker w = {m};
	char         *s;

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	s = render(m);
	assert_true(value_of(s, "c_hits_total") == 200000);
	assert_true(value_of(s, "c_lat_count") == 200000);
	assert_true(value_of(s, "c_lat_bucket{le=\"0.0025\"}") == 200000);
	assert_true(value_of(s, "c_lat_bucket{le=\"0.001\"}") == 0);
	free(s);
	cm_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_and_identity),
	    cmocka_unit_test(test_help_type_once_and_grouped),
	    cmocka_unit_test(test_gauge),
	    cmocka_unit_test(test_histogram_buckets_cumulative),
	    cmocka_unit_test(test_histogram_without_labels),
	    cmocka_unit_test(test_process_metrics),
	    cmocka_unit_test(test_misuse_and_null),
	    cmocka_unit_test(test_help_escaped),
	    cmocka_unit_test(test_concurrent_updates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
