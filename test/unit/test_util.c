/*
 * test_util.c - clocks, random ids, UUIDs, time formatting, hex/base64url, parsing, signals.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/util.h"

static void
test_clocks(void **state)
{
	int64_t  now = cm_now_ms();
	int64_t  m1 = cm_mono_ms();
	uint64_t n1 = cm_mono_ns();

	assert_true(now > 1700000000000LL); /* after Nov 2023 */
	usleep(20000);
	assert_true(cm_mono_ms() - m1 >= 19);
	assert_true(cm_mono_ns() - n1 >= 19000000u);
}

static void
test_random_bytes_differ(void **state)
{
	unsigned char a[32], b[32], zero[32] = {0};

	cm_random_bytes(a, sizeof(a));
	cm_random_bytes(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}

static void
test_uuid(void **state)
{
	char u1[37], u2[37];

	cm_uuid_v4(u1);
	cm_uuid_v4(u2);
	assert_int_equal(strlen(u1), 36);
	assert_true(cm_uuid_valid(u1));
	assert_string_not_equal(u1, u2);
	assert_int_equal(u1[14], '4');
	assert_non_null(strchr("89ab", u1[19]));
	assert_true(cm_uuid_valid("123e4567-E89B-12d3-a456-426614174000"));
	assert_false(cm_uuid_valid("123e4567-e89b-12d3-a456-42661417400"));   /* short */
	assert_false(cm_uuid_valid("123e4567-e89b-12d3-a456-4266141740000")); /* long */
	assert_false(cm_uuid_valid("123e4567xe89b-12d3-a456-426614174000"));
	assert_false(cm_uuid_valid("123e4567-e89b-12d3-a456-42661417400g"));
	assert_false(cm_uuid_valid(""));
	assert_false(cm_uuid_valid(NULL));
}

static void
test_format_time(void **state)
{
	char out[32];

	cm_format_time_ms(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	cm_format_time_ms(1795879468123LL, out);
	assert_string_equal(out, "2026-11-28T15:24:28.123Z");
	cm_format_time_ms(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	/* The same second again (kept per thread), then the next one. */
	cm_format_time_ms(1795879468007LL, out);
	assert_string_equal(out, "2026-11-28T15:24:28.007Z");
	cm_format_time_ms(1795879468999LL, out);
	assert_string_equal(out, "2026-11-28T15:24:28.999Z");
	cm_format_time_ms(1795879469000LL, out);
	assert_string_equal(out, "2026-11-28T15:24:29.000Z");
}

static void
test_hex(void **state)
{
	char out[9];

	cm_hex("\x00\x01\xab\xff", 4, out);
	assert_string_equal(out, "0001abff");
	cm_hex("", 0, out);
	assert_string_equal(out, "");
}

static void
check_b64(const char *in, const char *want)
{
	char out[64];

	assert_int_equal(cm_b64url_len(strlen(in)), strlen(want));
	cm_b64url(in, strlen(in), out);
	assert_string_equal(out, want);
}

static void
test_b64url(void **state)
{
	/* RFC 4648 test vectors, padding removed. */
	check_b64("", "");
	check_b64("f", "Zg");
	check_b64("fo", "Zm8");
	check_b64("foo", "Zm9v");
	check_b64("foob", "Zm9vYg");
	check_b64("fooba", "Zm9vYmE");
	check_b64("foobar", "Zm9vYmFy");
	/* The url alphabet: 0xfb 0xff -> "-_8" (standard base64 would be "+/8"). */
	check_b64("\xfb\xff", "-_8");
}

static void
test_wipe_and_ct_equal(void **state)
{
	char secret[16] = "hunter2hunter2!";
	char zero[16] = {0};

	cm_wipe(secret, sizeof(secret));
	assert_memory_equal(secret, zero, sizeof(zero));
	cm_wipe(NULL, 0);
	assert_true(cm_ct_equal("abc", "abc", 3));
	assert_false(cm_ct_equal("abc", "abd", 3));
	assert_false(cm_ct_equal("xbc", "abc", 3));
	assert_true(cm_ct_equal("a", "b", 0));
}

static void
test_parse_i64(void **state)
{
	int64_t v = 7;

	assert_true(cm_parse_i64("0", &v));
	assert_int_equal(v, 0);
	assert_true(cm_parse_i64("-42", &v));
	assert_int_equal(v, -42);
	assert_true(cm_parse_i64("+42", &v));
	assert_int_equal(v, 42);
	assert_true(cm_parse_i64("9223372036854775807", &v));
	assert_true(v == INT64_MAX);
	assert_true(cm_parse_i64("-9223372036854775808", &v));
	assert_true(v == INT64_MIN);
	v = 5;
	assert_false(cm_parse_i64("9223372036854775808", &v));
	assert_false(cm_parse_i64("-9223372036854775809", &v));
	assert_false(cm_parse_i64("", &v));
	assert_false(cm_parse_i64(" 1", &v));
	assert_false(cm_parse_i64("1 ", &v));
	assert_false(cm_parse_i64("12abc", &v));
	assert_false(cm_parse_i64("0x10", &v));
	assert_false(cm_parse_i64("-", &v));
	assert_false(cm_parse_i64("+-1", &v));
	assert_false(cm_parse_i64(NULL, &v));
	assert_int_equal(v, 5); /* untouched by failures */
}

static void
test_strlcpy(void **state)
{
	char d[4];

	assert_int_equal(cm_strlcpy(d, "ab", sizeof(d)), 2);
	assert_string_equal(d, "ab");
	assert_int_equal(cm_strlcpy(d, "abcdef", sizeof(d)), 6);
	assert_string_equal(d, "abc");
	d[0] = 'z';
	assert_int_equal(cm_strlcpy(d, "q", 0), 1);
	assert_int_equal(d[0], 'z');
}

static void *
cm_test_kill_later(void *arg)
{
	usleep(50000);
	kill(getpid(), SIGTERM);
	return NULL;
}

static void
test_signals(void **state)
{
	pthread_t        t;
	sigset_t         cur;
	struct sigaction sa;

	cm_signals_block();
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	assert_true(sigismember(&cur, SIGTERM));
	assert_true(sigismember(&cur, SIGINT));
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_IGN);
	/* The thread inherits the mask, so the process-directed signal waits for sigwait. */
	assert_int_equal(pthread_create(&t, NULL, cm_test_kill_later, NULL), 0);
	assert_int_equal(cm_wait_for_signal(), SIGTERM);
	pthread_join(t, NULL);
}

static void
test_read_file(void **state)
{
	char  path[] = "/tmp/cm_read_fileXXXXXX";
	int   fd = mkstemp(path);
	char *got;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "-----BEGIN KEY-----\n", 20), 20);
	close(fd);
	assert_non_null(got = cm_read_file(path, 64));
	assert_string_equal(got, "-----BEGIN KEY-----\n");
	free(got);
	assert_null(cm_read_file(path, 19));           /* larger than allowed */
	assert_non_null(got = cm_read_file(path, 20)); /* exactly the limit */
	free(got);
	unlink(path);
	assert_null(cm_read_file(path, 64));
	assert_null(cm_read_file("", 64));
}

/* FNV-1a 64: the published test vectors, and the string form equal to the byte form. */
static void
test_hash(void **state)
{
	(void)state;
	assert_true(cm_hash("", 0) == 0xcbf29ce484222325ull);
	assert_true(cm_hash("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(cm_hash("foobar", 6) == 0x85944171f73967e8ull);
	assert_true(cm_hash_str("foobar") == cm_hash("foobar", 6));
	assert_true(cm_hash_str("") == cm_hash("", 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clocks),
	    cmocka_unit_test(test_random_bytes_differ),
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_format_time),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_b64url),
	    cmocka_unit_test(test_wipe_and_ct_equal),
	    cmocka_unit_test(test_parse_i64),
	    cmocka_unit_test(test_strlcpy),
	    cmocka_unit_test(test_signals),
	    cmocka_unit_test(test_read_file),
	    cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
