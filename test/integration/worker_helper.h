/*
 * worker_helper.h - a service worker as the skeleton makes one, for integration tests (and
 * bench/quality) that call handlers or runners directly: its own connections
 * (cm_service_conns_open) and the service's worker_init around them; closing finishes the
 * worker, then its connections. Around it, what every such test otherwise wrote again: the
 * skeleton's common config, a handler call as an RPC worker makes it (test_invoke), a metric
 * read from the service's registry, and dropping a run's schema.
 *
 * DESIGN. Header-only (static functions, unused ones allowed) so a test stays one .c file, as
 * test/CMakeLists.txt builds them; no cmocka here (the quality report includes it): every
 * function returns what went wrong and the test asserts on it.
 */
#ifndef TEST_WORKER_HELPER_H
#define TEST_WORKER_HELPER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/arena.h"
#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "cm/util.h"

#define TEST_CALL_TIMEOUT_MS 30000 /* a handler call's deadline */

typedef cm_err (*test_worker_init_fn)(void *app, const cm_service_conns *c, void **state);
typedef void (*test_worker_fini_fn)(void *app, void *state);

static __attribute__((unused)) cm_err
test_worker_open(const cm_service_config *common, const char *schema, const cm_jobs_options *jo,
                 test_worker_init_fn init, void *app, cm_service_conns *c, void **out)
{
	cm_err err;

	*out = NULL;
	if ((err = cm_service_conns_open(c, common, schema, jo)) != CM_OK)
		return err;
	if ((err = init(app, c, out)) != CM_OK)
		cm_service_conns_close(c);
	return err;
}

static __attribute__((unused)) void
test_worker_close(test_worker_fini_fn fini, void *app, void *state, cm_service_conns *c)
{
	if (state != NULL)
		fini(app, state);
	cm_service_conns_close(c);
}

/* The skeleton's common config for one worker on PostgreSQL db_url and Redis on 127.0.0.1
 * (warn logs); the strings are the caller's and must outlive c. */
static __attribute__((unused)) void
test_common_config(cm_service_config *c, const char *db_url, int64_t redis_port,
                   const char *rpc_url, const char *admin_addr)
{
	memset(c, 0, sizeof(*c));
	c->log_level = "warn";
	c->database_url = db_url;
	c->redis_host = "127.0.0.1";
	c->redis_port = redis_port;
	c->rpc_url = rpc_url;
	c->admin_addr = admin_addr;
	c->workers = 1;
}

/* The pgredis fixture's Redis port (CM_TEST_REDIS_PORT), as a string: the REDIS_PORT to set. */
static __attribute__((unused)) const char *
test_redis_port(void)
{
	const char *p = getenv("CM_TEST_REDIS_PORT");

	return p != NULL ? p : "26379";
}

/* test_common_config on the pgredis fixture's PostgreSQL (CM_TEST_PG) and Redis. */
static __attribute__((unused)) void
test_fixture_config(cm_service_config *c, const char *rpc_url, const char *admin_addr)
{
	int64_t redis_port = 0;

	(void)cm_parse_i64(test_redis_port(), &redis_port);
	test_common_config(c, getenv("CM_TEST_PG"), redis_port, rpc_url, admin_addr);
}

/* ---- handler calls ------------------------------------------------------------------------- */

/* One handler call: its arena (the response lives there) and its context. */
typedef struct test_call {
	cm_arena   arena;
	cm_rpc_ctx ctx;
} test_call;

/* Calls handler fn on worker state w as `subject`, as an RPC worker would: ctx is filled here,
 * the response (of descriptor d) is allocated in arena, which the caller initialised and frees.
 * CM_ENOMEM when the response cannot be allocated; else what the handler returns. */
static __attribute__((unused)) cm_err
test_handle(cm_arena *arena, cm_rpc_ctx *ctx, int64_t timeout_ms, void *w, cm_rpc_handler_fn fn,
            const char *subject, const void *req, const ProtobufCMessageDescriptor *d, void **resp)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->method = "test";
	ctx->request_id = "";
	ctx->subject = subject;
	ctx->session_id = "";
	ctx->client_addr = "";
	ctx->deadline_ms = cm_now_ms() + timeout_ms;
	ctx->worker_state = w;
	ctx->arena = arena;
	if ((*resp = cm_arena_alloc(arena, d->sizeof_message)) == NULL)
		return CM_ENOMEM;
	d->message_init(*resp);
	return fn(ctx, req, *resp);
}

/* test_handle in c's own arena (initialised here; the caller finis c->arena) and a 30 s
 * deadline: the call as most tests make it. */
static __attribute__((unused)) cm_err
test_invoke(test_call *c, void *w, cm_rpc_handler_fn fn, const char *subject, const void *req,
            const ProtobufCMessageDescriptor *d, void **resp)
{
	cm_arena_init(&c->arena);
	return test_handle(&c->arena, &c->ctx, TEST_CALL_TIMEOUT_MS, w, fn, subject, req, d, resp);
}

/* ---- metrics and schemas ------------------------------------------------------------------- */

/* The value of metric line `name` (with its labels, as rendered) in m; -1 when absent. */
static __attribute__((unused)) long long
test_metric(cm_metrics *m, const char *name)
{
	cm_buf      b;
	long long   v = -1;
	const char *p;
	size_t      n = strlen(name);

	cm_buf_init(&b, 1u << 20);
	if (cm_metrics_render(m, &b) == CM_OK && b.data != NULL) {
		for (p = b.data; (p = strstr(p, name)) != NULL; p += n)
			if ((p == b.data || p[-1] == '\n') && p[n] == ' ') {
				v = strtoll(p + n + 1, NULL, 10);
				break;
			}
	}
	cm_buf_fini(&b);
	return v;
}

/* Creates a run's own schema on db_url by running its migrations up. */
static __attribute__((unused)) cm_err
test_schema_create(const char *db_url, const char *schema, const cm_migration *migs, size_t n)
{
	cm_pg *pg = NULL;
	cm_err err;

	if ((err = cm_pg_open(&pg, db_url, schema)) == CM_OK)
		err = cm_pg_migrate_up(pg, schema, migs, n);
	cm_pg_close(pg);
	return err;
}

/* Drops a run's own schema on db_url by running its migrations down; says so when it stays
 * behind. */
static __attribute__((unused)) void
test_schema_drop_at(const char *db_url, const char *schema, const cm_migration *migs, size_t n)
{
	cm_pg *pg = NULL;

	if (cm_pg_open(&pg, db_url, schema) != CM_OK ||
	    cm_pg_migrate_down(pg, schema, migs, n, 0) != CM_OK)
		fprintf(stderr, "schema %s left behind\n", schema);
	cm_pg_close(pg);
}

/* test_schema_drop_at on the fixture's PostgreSQL (CM_TEST_PG). */
static __attribute__((unused)) void
test_schema_drop(const char *schema, const cm_migration *migs, size_t n)
{
	test_schema_drop_at(getenv("CM_TEST_PG"), schema, migs, n);
}

#endif
