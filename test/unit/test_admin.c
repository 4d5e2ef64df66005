/*
 * test_admin.c - the admin HTTP port over real loopback HTTP (libcurl): /healthz, /readyz
 * following the readiness check (checker thread and check_now), draining, /metrics, 404s,
 * restart on the same port, and a second admin on an address already served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "cm/admin.h"
#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/util.h"

#define ADDR "127.0.0.1:29900"
#define BASE "http://" ADDR

static atomic_bool t_ready;
static atomic_int  t_checks;

static bool
check_flag(void *arg, char *why, size_t whylen)
{
	atomic_fetch_add(&t_checks, 1);
	if (atomic_load(&t_ready))
		return true;
	cm_strlcpy(why, (const char *)arg, whylen);
	return false;
}

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	cm_buf *b = ud;

	return cm_buf_append(b, p, sz * n) == CM_OK ? sz * n : 0;
}

/* GETs path; returns the HTTP status (0 when the request failed) and the body in *body. */
static long
http_get(const char *path, cm_buf *body, char *ctype, size_t ctlen)
{
	CURL *c = curl_easy_init();
	char  url[256];
	long  status = 0;
	char *ct = NULL;

	assert_non_null(c);
	snprintf(url, sizeof(url), "%s%s", BASE, path);
	cm_buf_reset(body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (ctype != NULL && curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
		    ct != NULL)
			cm_strlcpy(ctype, ct, ctlen);
	}
	curl_easy_cleanup(c);
	return status;
}

static const char *
body_str(cm_buf *b)
{
	return b->data != NULL ? b->data : "";
}

struct fix {
	cm_admin   *a;
	cm_metrics *m;
	cm_buf      body;
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	atomic_store(&t_ready, false);
	atomic_store(&t_checks, 0);
	f->m = cm_metrics_alloc("adm_");
	cm_buf_init(&f->body, 1 << 22);
	if (f->m == NULL ||
	    cm_admin_start(&f->a, ADDR, f->m, check_flag, (void *)"db down", 100) != CM_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	cm_admin_stop(f->a);
	cm_metrics_free(f->m);
	cm_buf_fini(&f->body);
	free(f);
	return 0;
}

static void
test_healthz(void **state)
{
	struct fix *f = *state;
	char        ct[128] = "";

	assert_int_equal(http_get("/healthz", &f->body, ct, sizeof(ct)), 200);
	assert_string_equal(body_str(&f->body), "ok\n");
	assert_non_null(strstr(ct, "text/plain"));
}

static void
test_readyz_follows_check_now(void **state)
{
	struct fix *f = *state;

	assert_false(cm_admin_check_now(f->a));
	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 503);
	assert_non_null(strstr(body_str(&f->body), "db down"));
	atomic_store(&t_ready, true);
	assert_true(cm_admin_check_now(f->a));
	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 200);
	assert_string_equal(body_str(&f->body), "ok\n");
}

static void
test_readyz_follows_checker_thread(void **state)
{
	struct fix *f = *state;
	long        st = 0;
	int64_t     until;

	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 503);
	atomic_store(&t_ready, true);
	/* The checker runs every 100 ms: the verdict must flip without check_now. */
	until = cm_mono_ms() + 3000;
	while (cm_mono_ms() < until && (st = http_get("/readyz", &f->body, NULL, 0)) != 200)
		usleep(20000);
	assert_int_equal(st, 200);
	atomic_store(&t_ready, false);
	until = cm_mono_ms() + 3000;
	while (cm_mono_ms() < until && (st = http_get("/readyz", &f->body, NULL, 0)) != 503)
		usleep(20000);
	assert_int_equal(st, 503);
	/* At least the two checks that flipped the verdict (the first one, at start, may not have
	 * run yet when /readyz first answered "starting"). */
	assert_true(atomic_load(&t_checks) >= 2);
}

static void
test_draining(void **state)
{
	struct fix *f = *state;

	atomic_store(&t_ready, true);
	assert_true(cm_admin_check_now(f->a));
	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 200);
	cm_admin_set_draining(f->a);
	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 503);
	assert_non_null(strstr(body_str(&f->body), "draining"));
	/* Still alive, and a passing check does not undo draining. */
	assert_true(cm_admin_check_now(f->a));
	assert_int_equal(http_get("/readyz", &f->body, NULL, 0), 503);
	assert_int_equal(http_get("/healthz", &f->body, NULL, 0), 200);
}

static void
test_metrics(void **state)
{
	struct fix *f = *state;
	char        ct[128] = "";

	cm_counter_add(cm_metrics_counter(f->m, "scrapes_total", "Test counter.", "k=\"v\""), 5);
	cm_histogram_observe(cm_metrics_histogram(f->m, "lat_seconds", "Latency.", NULL), 0.2);
	assert_int_equal(http_get("/metrics", &f->body, ct, sizeof(ct)), 200);
	assert_non_null(strstr(ct, "text/plain"));
	assert_non_null(strstr(ct, "version=0.0.4"));
	assert_non_null(strstr(body_str(&f->body), "# TYPE adm_scrapes_total counter\n"));
	assert_non_null(strstr(body_str(&f->body), "adm_scrapes_total{k=\"v\"} 5\n"));
	assert_non_null(strstr(body_str(&f->body), "adm_lat_seconds_bucket{le=\"0.25\"} 1\n"));
	assert_non_null(strstr(body_str(&f->body), "process_resident_memory_bytes "));
	assert_non_null(strstr(body_str(&f->body), "process_open_fds "));
}

static void
test_unknown_path_and_method(void **state)
{
	struct fix *f = *state;
	CURL       *c;
	long        status = 0;

	assert_int_equal(http_get("/nope", &f->body, NULL, 0), 404);
	assert_int_equal(http_get("/healthz/extra", &f->body, NULL, 0), 404);
	c = curl_easy_init();
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, BASE "/healthz");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	assert_int_equal(status, 405);
}

static void
test_second_admin_on_same_address_fails(void **state)
{
	struct fix *f = *state;
	cm_admin   *b = NULL;

	assert_int_equal(cm_admin_start(&b, ADDR, NULL, NULL, NULL, 100), CM_EUNAVAIL); /* in use */
	assert_null(b);
	/* The first one is untouched. */
	assert_int_equal(http_get("/healthz", &f->body, NULL, 0), 200);
}

static void
test_stop_restart_and_null_ready(void **state)
{
	cm_admin *a = NULL;
	cm_buf    body;

	cm_buf_init(&body, 1 << 20);
	assert_int_equal(cm_admin_start(&a, ADDR, NULL, NULL, NULL, 50), CM_OK);
	assert_true(cm_admin_check_now(a)); /* no check function: always ready */
	assert_int_equal(http_get("/readyz", &body, NULL, 0), 200);
	/* Without a registry /metrics still serves the process figures. */
	assert_int_equal(http_get("/metrics", &body, NULL, 0), 200);
	assert_non_null(strstr(body_str(&body), "process_cpu_seconds_total"));
	cm_admin_stop(a);
	assert_int_equal(http_get("/healthz", &body, NULL, 0), 0); /* nobody listening */
	a = NULL;
	assert_int_equal(cm_admin_start(&a, ADDR, NULL, NULL, NULL, 50), CM_OK);
	assert_int_equal(http_get("/healthz", &body, NULL, 0), 200);
	cm_admin_stop(a);
	cm_buf_fini(&body);
}

static cm_err
render_page(void *arg, cm_buf *out)
{
	return arg != NULL ? cm_buf_printf(out, "{\"page\":\"%s\"}", (const char *)arg)
	                   : CM_EINTERNAL;
}

/* A process's own pages beside the fixed three; a page that fails to render answers 500. */
static void
test_extra_pages(void **state)
{
	const cm_admin_page pages[] = {
	    {"/configz", "application/json", render_page, "configz"},
	    {"/broken", "application/json", render_page, NULL},
	};
	cm_admin *a = NULL;
	cm_buf    body;
	char      ct[128] = "";

	(void)state;
	cm_buf_init(&body, 1 << 20);
	assert_int_equal(cm_admin_start_pages(&a, ADDR, NULL, NULL, NULL, 50, pages, 2), CM_OK);
	assert_int_equal(http_get("/configz", &body, ct, sizeof(ct)), 200);
	assert_string_equal(body_str(&body), "{\"page\":\"configz\"}");
	assert_string_equal(ct, "application/json");
	assert_int_equal(http_get("/broken", &body, NULL, 0), 500);
	assert_int_equal(http_get("/healthz", &body, NULL, 0), 200);
	cm_admin_stop(a);
	cm_buf_fini(&body);
}

static void
test_bad_address(void **state)
{
	cm_admin *a = NULL;

	assert_int_equal(cm_admin_start(&a, "", NULL, NULL, NULL, 100), CM_EINVAL);
	assert_null(a);
	assert_int_equal(cm_admin_start(&a, "256.1.1.1:29901", NULL, NULL, NULL, 100), CM_EINVAL);
	assert_null(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readyz_follows_check_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readyz_follows_checker_thread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_draining, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_path_and_method, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_admin_on_same_address_fails, setup,
	                                    teardown),
	    cmocka_unit_test(test_stop_restart_and_null_ready),
	    cmocka_unit_test(test_extra_pages),
	    cmocka_unit_test(test_bad_address),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
