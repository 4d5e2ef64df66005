/*
 * test_chat_caps.c - svc-chat's caps and argument checks, which answer before any database or
 * upstream is touched: no subject, empty / blank / oversized / non-UTF-8 messages, list limits
 * and cursors, legacy calls without use_selected, malformed chat ids; and the chat cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-chat/cache.h"
#include "../../svc-chat/config.h"
#include "../../svc-chat/handlers.h"
#include "../../svc-chat/server.h"
#include "proto/chat.pb-c.h"

static chat_service svc;
static chat_worker  wk = {&svc, NULL, NULL}; /* no connections: none may be used */

static cm_err
call(cm_rpc_handler_fn fn, const char *subject, const void *req, void *resp, cm_rpc_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->method = "test";
	ctx->request_id = "";
	ctx->subject = subject;
	ctx->session_id = "";
	ctx->client_addr = "";
	ctx->worker_state = &wk;
	return fn(ctx, req, resp);
}

static cm_err
send_text(const char *text, cm_rpc_ctx *ctx)
{
	Chat__SendRequest rq = CHAT__SEND_REQUEST__INIT;
	Chat__Message     m = CHAT__MESSAGE__INIT;

	rq.chat_id = (char *)"00000000-0000-4000-8000-000000000000";
	rq.content = (char *)text;
	return call(chat_handle_send, "u1", &rq, &m, ctx);
}

static void
test_message_caps(void **state)
{
	static char big[CHAT_MAX_MESSAGE + 2];
	cm_rpc_ctx  ctx;

	(void)state;
	assert_int_equal(send_text("", &ctx), CM_EINVAL);
	assert_string_equal(ctx.message, "the message is empty");
	assert_int_equal(send_text(" \n\t\r ", &ctx), CM_EINVAL);
	assert_string_equal(ctx.message, "the message is empty");
	memset(big, 'a', CHAT_MAX_MESSAGE + 1);
	assert_int_equal(send_text(big, &ctx), CM_EINVAL);
	assert_string_equal(ctx.message, "the message is too long (at most 8192 bytes)");
	assert_int_equal(send_text("caf\xc3", &ctx), CM_EINVAL);
	assert_string_equal(ctx.message, "the message is not valid UTF-8");
}

static void
test_unauthenticated(void **state)
{
	Chat__ChatRef rq = CHAT__CHAT_REF__INIT;
	Chat__Chat    c = CHAT__CHAT__INIT;
	cm_rpc_ctx    ctx;

	(void)state;
	rq.id = (char *)"00000000-0000-4000-8000-000000000000";
	assert_int_equal(call(chat_handle_get, "", &rq, &c, &ctx), CM_EAUTH);
}

/* A malformed id is NOT_FOUND, like another user's. */
static void
test_malformed_ids(void **state)
{
	Chat__ChatRef     rq = CHAT__CHAT_REF__INIT;
	Chat__Chat        c = CHAT__CHAT__INIT;
	Chat__SendRequest sq = CHAT__SEND_REQUEST__INIT;
	Chat__Message     m = CHAT__MESSAGE__INIT;
	cm_rpc_ctx        ctx;

	(void)state;
	rq.id = (char *)"1; DROP TABLE chats";
	assert_int_equal(call(chat_handle_get, "u1", &rq, &c, &ctx), CM_ENOTFOUND);
	sq.chat_id = (char *)"";
	sq.content = (char *)"hello?";
	assert_int_equal(call(chat_handle_send, "u1", &sq, &m, &ctx), CM_ENOTFOUND);
}

static void
test_list_args(void **state)
{
	Chat__ListRequest rq = CHAT__LIST_REQUEST__INIT;
	Chat__MessageList l = CHAT__MESSAGE_LIST__INIT;
	cm_rpc_ctx        ctx;

	(void)state;
	rq.chat_id = (char *)"00000000-0000-4000-8000-000000000000";
	rq.limit = CHAT_LIST_MAX + 1;
	assert_int_equal(call(chat_handle_list, "u1", &rq, &l, &ctx), CM_EINVAL);
	rq.limit = -1;
	assert_int_equal(call(chat_handle_list, "u1", &rq, &l, &ctx), CM_EINVAL);
	rq.limit = 10;
	rq.cursor = (char *)"12abc";
	assert_int_equal(call(chat_handle_list, "u1", &rq, &l, &ctx), CM_EINVAL);
	rq.cursor = (char *)"-5";
	assert_int_equal(call(chat_handle_list, "u1", &rq, &l, &ctx), CM_EINVAL);
	assert_string_equal(ctx.message, "bad cursor");
}

static void
test_legacy_needs_use_selected(void **state)
{
	Chat__HistoryRequest rq = CHAT__HISTORY_REQUEST__INIT;
	Chat__History        h = CHAT__HISTORY__INIT;
	Chat__ClearResponse  c = CHAT__CLEAR_RESPONSE__INIT;
	cm_rpc_ctx           ctx;

	(void)state;
	assert_int_equal(call(chat_handle_history, "u1", &rq, &h, &ctx), CM_EINVAL);
	assert_int_equal(call(chat_handle_clear, "u1", &rq, &c, &ctx), CM_EINVAL);
}

static void
test_config_defaults(void **state)
{
	chat_config c;

	(void)state;
	assert_int_equal(chat_config_defaults(&c), CM_OK);
	assert_string_equal(c.events_url, "tcp://127.0.0.1:7203");
	assert_int_equal(c.user_turns, 2);
	assert_int_equal(c.history_turns, 6);
	assert_int_equal(c.turn_timeout_ms, 120000);
	assert_int_equal(c.max_messages, 1000);
}

/* The chat cache: a hit only for the same id and owner; a collision replaces, never misleads. */
static void
test_chat_cache(void **state)
{
	chat_cache *c = NULL;
	chat_row    a, b, got;

	(void)state;
	assert_int_equal(chat_cache_alloc(&c), CM_OK);
	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "00000000-0000-4000-8000-000000000001");
	snprintf(a.document_id, sizeof(a.document_id), "00000000-0000-4000-8000-0000000000d1");
	a.pages = 7;
	assert_false(chat_cache_get(c, a.id, "u1", &got));
	chat_cache_put(c, "u1", &a);
	assert_true(chat_cache_get(c, a.id, "u1", &got));
	assert_string_equal(got.document_id, a.document_id);
	assert_int_equal(got.pages, 7);
	assert_false(chat_cache_get(c, a.id, "u2", &got)); /* another user's chat */
	/* other ids until one takes a's slot: then a is a miss (never b's row), b a hit */
	for (int i = 0; i < 100 * CHAT_CACHE_SLOTS && chat_cache_get(c, a.id, "u1", &got); i++) {
		b = a;
		snprintf(b.id, sizeof(b.id), "00000000-0000-4000-8000-%012d", i + 2);
		chat_cache_put(c, "u1", &b);
	}
	assert_false(chat_cache_get(c, a.id, "u1", &got));
	assert_true(chat_cache_get(c, b.id, "u1", &got));
	assert_string_equal(got.id, b.id);
	chat_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_message_caps),
	    cmocka_unit_test(test_unauthenticated),
	    cmocka_unit_test(test_malformed_ids),
	    cmocka_unit_test(test_list_args),
	    cmocka_unit_test(test_legacy_needs_use_selected),
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_chat_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
