/*
 * test_log.c - JSON log lines: stderr is captured through a pipe (dup2) and every line is parsed
 * with jansson and checked field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/util.h"

static int             cm_test_saved = -1;
static int             cm_test_pipe[2] = {-1, -1};
static pthread_t       cm_test_reader;
static char           *cm_test_out; /* NUL-terminated so far, under cm_test_mu while capturing */
static size_t          cm_test_len;
static pthread_mutex_t cm_test_mu = PTHREAD_MUTEX_INITIALIZER;

#define CAPTURE_CAP0 (1u << 16)

/* Drains the pipe while the test writes, so writers never block on a full pipe. The buffer is
 * capture_begin's, made before this thread starts (a test may look at it at once). */
static void *
capture_reader(void *arg)
{
	size_t  cap = CAPTURE_CAP0;
	char    chunk[4096];
	ssize_t n;

	(void)arg;
	while ((n = read(cm_test_pipe[0], chunk, sizeof(chunk))) > 0) {
		pthread_mutex_lock(&cm_test_mu);
		if (cap - cm_test_len <= (size_t)n) {
			char *p = realloc(cm_test_out, cap * 2 + (size_t)n);

			if (p == NULL) {
				pthread_mutex_unlock(&cm_test_mu);
				break;
			}
			cm_test_out = p;
			cap = cap * 2 + (size_t)n;
		}
		memcpy(cm_test_out + cm_test_len, chunk, (size_t)n);
		cm_test_len += (size_t)n;
		cm_test_out[cm_test_len] = '\0';
		pthread_mutex_unlock(&cm_test_mu);
	}
	return NULL;
}

static void
capture_begin(void)
{
	assert_int_equal(pipe(cm_test_pipe), 0);
	cm_test_len = 0;
	cm_test_out = malloc(CAPTURE_CAP0);
	assert_non_null(cm_test_out);
	cm_test_out[0] = '\0';
	cm_test_saved = dup(STDERR_FILENO);
	assert_true(cm_test_saved >= 0);
	assert_true(dup2(cm_test_pipe[1], STDERR_FILENO) >= 0);
	assert_int_equal(pthread_create(&cm_test_reader, NULL, capture_reader, NULL), 0);
}

/* Restores stderr and returns what was written (malloc'd, NUL-terminated). */
static char *
capture_end(size_t *lenp)
{
	char *out;

	assert_true(dup2(cm_test_saved, STDERR_FILENO) >= 0);
	close(cm_test_saved);
	close(cm_test_pipe[1]);
	pthread_join(cm_test_reader, NULL);
	close(cm_test_pipe[0]);
	out = cm_test_out;
	cm_test_out = NULL; /* the caller's now */
	assert_non_null(out);
	if (lenp != NULL)
		*lenp = cm_test_len;
	return out;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += (*s == '\n');
	return n;
}

/* Parses exactly one line; fails the test when it is not one JSON object ending in '\n'. */
static json_t *
parse_line(const char *s)
{
	json_error_t jerr;
	size_t       len = strlen(s);
	json_t      *j;

	assert_true(len > 0);
	assert_int_equal(s[len - 1], '\n');
	assert_int_equal(count_lines(s), 1);
	j = json_loadb(s, len - 1, 0, &jerr);
	if (j == NULL)
		fail_msg("not JSON: %s (%s)", jerr.text, s);
	assert_true(json_is_object(j));
	return j;
}

static const char *
jstr(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	if (v == NULL)
		return NULL;
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void
test_line_fields(void **state)
{
	char       *out;
	json_t     *j;
	const char *ts;

	cm_log_init("auth", CM_LOG_INFO);
	cm_log_set_request_id(NULL);
	capture_begin();
	cm_info("AUTH-TEST", "hello %s %d", "world", 42);
	out = capture_end(NULL);
	j = parse_line(out);
	assert_string_equal(jstr(j, "level"), "info");
	assert_string_equal(jstr(j, "svc"), "auth");
	assert_string_equal(jstr(j, "id"), "AUTH-TEST");
	assert_string_equal(jstr(j, "msg"), "hello world 42");
	assert_null(json_object_get(j, "rid"));
	ts = jstr(j, "ts");
	assert_non_null(ts);
	/* 2026-11-28T15:24:28.123Z */
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[4], '-');
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
	assert_int_equal(json_object_size(j), 5);
	json_decref(j);
	free(out);
}

static void
test_escaping(void **state)
{
	const char *nasty = "quote\" back\\ nl\n tab\t ctl\x01 bad\xff";
	char       *out;
	json_t     *j;

	cm_log_init("svc\"x", CM_LOG_DEBUG);
	capture_begin();
	cm_warn("ID\n", "%s", nasty);
	out = capture_end(NULL);
	j = parse_line(out);
	assert_string_equal(jstr(j, "level"), "warn");
	assert_string_equal(jstr(j, "svc"), "svc\"x");
	assert_string_equal(jstr(j, "id"), "ID\n");
	assert_string_equal(jstr(j, "msg"), "quote\" back\\ nl\n tab\t ctl\x01 bad\xef\xbf\xbd");
	json_decref(j);
	free(out);
}

static void
test_request_id(void **state)
{
	char    long_rid[200];
	char   *out;
	json_t *j;

	cm_log_init("auth", CM_LOG_INFO);
	cm_log_set_request_id("req-123");
	assert_string_equal(cm_log_request_id(), "req-123");
	capture_begin();
	cm_error("AUTH-X", "boom");
	out = capture_end(NULL);
	j = parse_line(out);
	assert_string_equal(jstr(j, "rid"), "req-123");
	assert_string_equal(jstr(j, "level"), "error");
	json_decref(j);
	free(out);

	memset(long_rid, 'r', sizeof(long_rid) - 1);
	long_rid[sizeof(long_rid) - 1] = '\0';
	cm_log_set_request_id(long_rid);
	assert_int_equal(strlen(cm_log_request_id()), CM_MAX_REQUEST_ID);
	cm_log_set_request_id(NULL);
	assert_string_equal(cm_log_request_id(), "");
}

static void *
other_thread(void *arg)
{
	*(const char **)arg = cm_log_request_id();
	return NULL;
}

static void
test_request_id_is_thread_local(void **state)
{
	pthread_t   t;
	const char *seen = NULL;

	cm_log_set_request_id("mine");
	assert_int_equal(pthread_create(&t, NULL, other_thread, &seen), 0);
	pthread_join(t, NULL);
	assert_non_null(seen);
	assert_string_equal(seen, "");
	assert_string_equal(cm_log_request_id(), "mine");
	cm_log_set_request_id(NULL);
}

static void
test_level_filter(void **state)
{
	char *out;

	cm_log_init("auth", CM_LOG_WARN);
	assert_false(cm_log_enabled(CM_LOG_DEBUG));
	assert_false(cm_log_enabled(CM_LOG_INFO));
	assert_true(cm_log_enabled(CM_LOG_WARN));
	assert_true(cm_log_enabled(CM_LOG_ERROR));
	capture_begin();
	cm_debug("X", "no");
	cm_info("X", "no");
	cm_log_(CM_LOG_INFO, "X", "no"); /* the function filters too, not only the macro */
	cm_warn("X", "yes");
	cm_error("X", "yes");
	out = capture_end(NULL);
	assert_int_equal(count_lines(out), 2);
	assert_null(strstr(out, "\"no\""));
	free(out);
}

static void
test_level_parse(void **state)
{
	assert_int_equal(cm_log_level_parse("debug"), CM_LOG_DEBUG);
	assert_int_equal(cm_log_level_parse("info"), CM_LOG_INFO);
	assert_int_equal(cm_log_level_parse("warn"), CM_LOG_WARN);
	assert_int_equal(cm_log_level_parse("ERROR"), CM_LOG_ERROR);
	assert_int_equal(cm_log_level_parse("nonsense"), CM_LOG_INFO);
	assert_int_equal(cm_log_level_parse(""), CM_LOG_INFO);
	assert_int_equal(cm_log_level_parse(NULL), CM_LOG_INFO);
}

static void
test_long_message_truncated_but_valid(void **state)
{
	size_t  n = 40000;
	char   *big = malloc(n + 1);
	char   *out;
	json_t *j;

	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	cm_log_init("auth", CM_LOG_INFO);
	capture_begin();
	cm_info("BIG", "%s", big);
	out = capture_end(NULL);
	j = parse_line(out);
	assert_true(strlen(jstr(j, "msg")) >= 1000);
	assert_true(strlen(jstr(j, "msg")) < n);
	json_decref(j);
	free(out);
	free(big);
}

static void
test_raw_json(void **state)
{
	const char *raw = "{\"type\":\"access\",\"status\":200}";
	char       *out;
	json_t     *j;

	capture_begin();
	cm_log_raw_json(raw, strlen(raw));
	out = capture_end(NULL);
	j = parse_line(out);
	assert_string_equal(jstr(j, "type"), "access");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
	json_decref(j);
	free(out);
}

/* Buffered raw lines (access logs): 4 threads x 500 lines while the buffer is on; a line is on
 * stderr within the flush period without any stop (polled), and after the stop every line is
 * there once, whole, and nothing is left behind. Lines are large enough (~900 bytes) to need
 * several PIPE_BUF pieces per flush and to fill half the buffer between flushes. */
#define BUF_THREADS 4
#define BUF_LINES 500

static void *
buffered_thread(void *arg)
{
	int  t = *(int *)arg;
	char line[1024], pad[860];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < BUF_LINES; i++) {
		int n = snprintf(line, sizeof(line),
		                 "{\"type\":\"access\",\"t\":%d,\"i\":%d,\"p\":\"%s\"}", t, i, pad);
		cm_log_raw_json(line, (size_t)n);
	}
	return NULL;
}

static void
test_buffered_raw_lines(void **state)
{
	pthread_t   th[BUF_THREADS];
	int         ids[BUF_THREADS];
	char       *out, *p, *nl;
	size_t      len;
	int         seen[BUF_THREADS][BUF_LINES] = {{0}};
	int64_t     until;
	const char *first = "{\"type\":\"access\",\"first\":1}", *after = "{\"after\":1}";

	(void)state;
	capture_begin();
	assert_true(cm_log_buffer_start(50));
	cm_log_raw_json(first, strlen(first));
	/* Written by the flusher, not by a stop: the pipe holds it within the period. */
	for (until = cm_mono_ms() + 5000; cm_mono_ms() < until;) {
		bool there;

		pthread_mutex_lock(&cm_test_mu);
		there = cm_test_out != NULL && strstr(cm_test_out, "\"first\":1") != NULL;
		pthread_mutex_unlock(&cm_test_mu);
		if (there)
			break;
		usleep(5000);
	}
	assert_true(cm_mono_ms() < until);
	for (int t = 0; t < BUF_THREADS; t++) {
		ids[t] = t;
		assert_int_equal(pthread_create(&th[t], NULL, buffered_thread, &ids[t]), 0);
	}
	for (int t = 0; t < BUF_THREADS; t++)
		pthread_join(th[t], NULL);
	cm_log_buffer_stop();
	cm_log_raw_json(after, strlen(after)); /* at once again */
	out = capture_end(&len);
	assert_int_equal(count_lines(out), 2 + BUF_THREADS * BUF_LINES);
	for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		json_error_t jerr;
		json_t      *j = json_loadb(p, (size_t)(nl - p), 0, &jerr);

		assert_non_null(j); /* whole: no other line inside it */
		if (json_object_get(j, "t") != NULL) {
			int t = (int)json_integer_value(json_object_get(j, "t"));
			int i = (int)json_integer_value(json_object_get(j, "i"));

			assert_true(t >= 0 && t < BUF_THREADS && i >= 0 && i < BUF_LINES);
			seen[t][i]++;
		}
		json_decref(j);
	}
	for (int t = 0; t < BUF_THREADS; t++)
		for (int i = 0; i < BUF_LINES; i++)
			assert_int_equal(seen[t][i], 1);
	assert_non_null(strstr(out, "{\"after\":1}\n"));
	free(out);
}

struct burst {
	int id;
};

static void *
burst_thread(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 200; i++)
		cm_info("BURST", "thread %d line %d padding %0100d", b->id, i, 0);
	return NULL;
}

static void
test_concurrent_lines_do_not_interleave(void **state)
{
	pthread_t    t[4];
	struct burst b[4];
	char        *out, *line, *next;
	int          lines = 0;

	cm_log_init("auth", CM_LOG_INFO);
	capture_begin();
	for (int i = 0; i < 4; i++) {
		b[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, burst_thread, &b[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	out = capture_end(NULL);
	for (line = out; *line != '\0'; line = next + 1) {
		json_error_t jerr;
		json_t      *j;

		next = strchr(line, '\n');
		assert_non_null(next);
		j = json_loadb(line, (size_t)(next - line), 0, &jerr);
		if (j == NULL)
			fail_msg("interleaved or broken line: %.*s", (int)(next - line), line);
		json_decref(j);
		lines++;
	}
	assert_int_equal(lines, 800);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_fields),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_request_id),
	    cmocka_unit_test(test_request_id_is_thread_local),
	    cmocka_unit_test(test_level_filter),
	    cmocka_unit_test(test_level_parse),
	    cmocka_unit_test(test_long_message_truncated_but_valid),
	    cmocka_unit_test(test_raw_json),
	    cmocka_unit_test(test_buffered_raw_lines),
	    cmocka_unit_test(test_concurrent_lines_do_not_interleave),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
