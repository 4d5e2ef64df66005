/*
 * worker_helper.h - a service worker as the skeleton makes one, for integration tests that call
 * handlers or runners directly: its own connections (cm_service_conns_open) and the service's
 * worker_init around them; closing finishes the worker, then its connections. And dropping a
 * run's schema.
 */
#ifndef TEST_WORKER_HELPER_H
#define TEST_WORKER_HELPER_H

#include <stdio.h>
#include <stdlib.h>

#include "cm/pg.h"
#include "cm/service.h"

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

/* Drops a test run's own schema by running its migrations down; says so when it stays behind. */
static __attribute__((unused)) void
test_schema_drop(const char *schema, const cm_migration *migs, size_t n)
{
	cm_pg *pg = NULL;

	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK ||
	    cm_pg_migrate_down(pg, schema, migs, n, 0) != CM_OK)
		fprintf(stderr, "schema %s left behind\n", schema);
	cm_pg_close(pg);
}

#endif
