/*
 * test_edge_clientaddr.c - trusted-proxy ranges and the X-Forwarded-For walk (edge/clientaddr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "clientaddr.h"

static void
test_cidrs_parse(void **state)
{
	edge_cidrs c;

	(void)state;
	assert_int_equal(edge_cidrs_parse("", &c), CM_OK);
	assert_int_equal(c.n, 0);
	assert_int_equal(edge_cidrs_parse("10.0.0.0/8, 127.0.0.1,::1/128 ,fd00::/8", &c), CM_OK);
	assert_int_equal(c.n, 4);
	assert_true(edge_cidrs_contain(&c, "10.200.3.4"));
	assert_false(edge_cidrs_contain(&c, "11.0.0.1"));
	assert_true(edge_cidrs_contain(&c, "127.0.0.1"));
	assert_false(edge_cidrs_contain(&c, "127.0.0.2"));
	assert_true(edge_cidrs_contain(&c, "::1"));
	assert_true(edge_cidrs_contain(&c, "fd12:3456::1"));
	assert_true(edge_cidrs_contain(&c, "::ffff:10.1.2.3")); /* IPv4-mapped counts as IPv4 */
	assert_false(edge_cidrs_contain(&c, "not-an-address"));
	assert_int_equal(edge_cidrs_parse("10.0.0.0/33", &c), CM_EINVAL);
	assert_int_equal(edge_cidrs_parse("10.0.0.0/x", &c), CM_EINVAL);
	assert_int_equal(edge_cidrs_parse("example.com", &c), CM_EINVAL);
	assert_int_equal(edge_cidrs_parse("172.16.0.0/12", &c), CM_OK);
	assert_true(edge_cidrs_contain(&c, "172.31.255.255"));
	assert_false(edge_cidrs_contain(&c, "172.32.0.0"));
}

static void
test_client_address(void **state)
{
	edge_cidrs t;
	char       out[EDGE_ADDR_LEN];

	(void)state;
	assert_int_equal(edge_cidrs_parse("10.0.0.0/8", &t), CM_OK);
	/* An untrusted peer's X-Forwarded-For is ignored. */
	edge_client_addr(&t, "198.51.100.1", "1.2.3.4", out, sizeof(out));
	assert_string_equal(out, "198.51.100.1");
	/* From a trusted proxy: the right-most hop that is not a proxy. */
	edge_client_addr(&t, "10.0.0.5", "1.2.3.4", out, sizeof(out));
	assert_string_equal(out, "1.2.3.4");
	edge_client_addr(&t, "10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", out, sizeof(out));
	assert_string_equal(out, "1.2.3.4");
	edge_client_addr(&t, "10.0.0.5", " 2001:db8::1 ", out, sizeof(out));
	assert_string_equal(out, "2001:db8::1");
	/* Every hop a proxy: the left-most. */
	edge_client_addr(&t, "10.0.0.5", "10.1.1.1,10.2.2.2", out, sizeof(out));
	assert_string_equal(out, "10.1.1.1");
	/* A malformed hop stops the walk at the last address that could be trusted. */
	edge_client_addr(&t, "10.0.0.5", "1.2.3.4, garbage", out, sizeof(out));
	assert_string_equal(out, "10.0.0.5");
	edge_client_addr(&t, "10.0.0.5", "garbage, 10.1.1.1", out, sizeof(out));
	assert_string_equal(out, "10.1.1.1");
	edge_client_addr(&t, "10.0.0.5", "", out, sizeof(out));
	assert_string_equal(out, "10.0.0.5");
	edge_client_addr(&t, "10.0.0.5", NULL, out, sizeof(out));
	assert_string_equal(out, "10.0.0.5");
}

/* The peer's text, IPv4 formatted by hand: every octet width, and IPv6 as inet_ntop writes it. */
static void
test_peer_text(void **state)
{
	static const char  *v4[] = {"0.0.0.0",         "127.0.0.1",  "10.20.30.40",
	                            "255.255.255.255", "1.99.100.9", "192.168.0.10"};
	struct sockaddr_in  sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr     other = {.sa_family = AF_UNIX};
	char                out[EDGE_ADDR_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		assert_int_equal(inet_pton(AF_INET, v4[i], &sin.sin_addr), 1);
		edge_peer_text((const struct sockaddr *)&sin, out);
		assert_string_equal(out, v4[i]);
	}
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
	edge_peer_text((const struct sockaddr *)&sin6, out);
	assert_string_equal(out, "2001:db8::1");
	memset(out, 'x', sizeof(out));
	edge_peer_text(&other, out);
	assert_string_equal(out, "");
	edge_peer_text(NULL, out);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidrs_parse),
	    cmocka_unit_test(test_client_address),
	    cmocka_unit_test(test_peer_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
