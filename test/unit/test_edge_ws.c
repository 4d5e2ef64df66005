/*
 * test_edge_ws.c - the WebSocket pieces that need no server: subscription messages, event
 * frames, the access token in the upgrade URI, the handshake's accept key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws.h"

#define JOB "2b1c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"

static void
test_parse_subscribe(void **state)
{
	char        res[48];
	const char *why = NULL;
	const char *ok = "{\"subscribe\":\"job:" JOB "\"}";

	(void)state;
	const char *chat = "{\"subscribe\":\"chat:" JOB "\"}";

	assert_true(edge_ws_parse_subscribe(ok, strlen(ok), res, sizeof(res), &why));
	assert_string_equal(res, "job:" JOB);
	assert_true(edge_ws_parse_subscribe(chat, strlen(chat), res, sizeof(res), &why));
	assert_string_equal(res, "chat:" JOB);
	static const char *const bad[] = {"{not json",
	                                  "[]",
	                                  "{}",
	                                  "{\"subscribe\":7}",
	                                  "{\"subscribe\":\"job:nope\"}",
	                                  "{\"subscribe\":\"user:" JOB "\"}",
	                                  "{\"subscribe\":\"chat:nope\"}",
	                                  "{\"subscribe\":\"job:" JOB "\",\"subscribe\":\"job:" JOB
	                                  "\"}",
	                                  NULL};
	for (int i = 0; bad[i] != NULL; i++) {
		why = NULL;
		assert_false(
		    edge_ws_parse_subscribe(bad[i], strlen(bad[i]), res, sizeof(res), &why));
		assert_non_null(why);
	}
	/* Too small a buffer is refused, not overrun. */
	assert_false(edge_ws_parse_subscribe(ok, strlen(ok), res, 10, &why));
}

static void
test_event_json(void **state)
{
	char *s;

	(void)state;
	s = edge_ws_event_json("job.progress", JOB, 3, 25, NULL);
	assert_string_equal(s, "{\"type\":\"job.progress\",\"job_id\":\"" JOB
	                       "\",\"done\":3,\"total\":25}");
	free(s);
	s = edge_ws_event_json("job.done", JOB, 0, 0, "succeeded");
	assert_string_equal(s, "{\"type\":\"job.done\",\"job_id\":\"" JOB
	                       "\",\"status\":\"succeeded\"}");
	free(s);
	assert_null(edge_ws_event_json("job.exploded", JOB, 0, 0, NULL));
	s = edge_ws_chat_json("chat.delta", JOB, "m1", "Hello \"p. 2\"", NULL);
	assert_string_equal(s, "{\"type\":\"chat.delta\",\"chat_id\":\"" JOB
	                       "\",\"message_id\":\"m1\",\"delta\":\"Hello \\\"p. 2\\\"\"}");
	free(s);
	s = edge_ws_chat_json("chat.done", JOB, "m1", NULL, "complete");
	assert_string_equal(s, "{\"type\":\"chat.done\",\"chat_id\":\"" JOB
	                       "\",\"message_id\":\"m1\",\"status\":\"complete\"}");
	free(s);
	assert_null(edge_ws_chat_json("chat.exploded", JOB, "m1", NULL, NULL));
}

static void
test_query_token(void **state)
{
	char tok[64];

	(void)state;
	assert_true(edge_ws_query_token("/api/v1/ws?access_token=abc.def", tok, sizeof(tok)));
	assert_string_equal(tok, "abc.def");
	assert_true(edge_ws_query_token("/api/v1/ws?x=1&access_token=t&y=2", tok, sizeof(tok)));
	assert_string_equal(tok, "t");
	assert_false(edge_ws_query_token("/api/v1/ws", tok, sizeof(tok)));
	assert_false(edge_ws_query_token("/api/v1/ws?access_token=", tok, sizeof(tok)));
	assert_false(edge_ws_query_token("/api/v1/ws?my_access_token=x", tok, sizeof(tok)));
	assert_false(edge_ws_query_token("/api/v1/ws?access_token=0123456789", tok, 5));
	assert_false(edge_ws_query_token(NULL, tok, sizeof(tok)));
}

static void
test_accept_key(void **state)
{
	char out[29];

	(void)state;
	/* RFC 6455 1.3's example. */
	assert_true(edge_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out));
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	static const char *const bad[] = {
	    "",
	    "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
	    "dGhlIHNhbXBsZSBub25jZQ=",   /* short */
	    "dGhlIHNhbXBsZSBub25jZQ===", /* long */
	    "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
	    "dGhlIHNhbXBsZSBub25jZSE=",  /* 17 bytes */
	    "dGhlIHNhbXBsZSBub25j",      /* 15 bytes */
	    " dGhlIHNhbXBsZSBub25jZQ==", /* whitespace */
	    NULL,
	};
	for (int i = 0; bad[i] != NULL; i++)
		assert_false(edge_ws_accept_key(bad[i], out));
	assert_false(edge_ws_accept_key(NULL, out));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_subscribe),
	    cmocka_unit_test(test_event_json),
	    cmocka_unit_test(test_query_token),
	    cmocka_unit_test(test_accept_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
