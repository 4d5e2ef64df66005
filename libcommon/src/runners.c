/*
 * runners.c - job-runner threads (cm/runners.h).
 *
 * DESIGN. Each thread builds its own connections and the service's state around them, then
 * alternates claim-and-run with an idle wait on LISTEN. The pool's only shared state is the
 * stopping flag, read between steps; everything else belongs to one thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/runners.h"

typedef struct runner_thread {
	cm_runners *pool;
	pthread_t   thread;
	cm_runner   r;
} runner_thread;

struct cm_runners {
	cm_runners_config cfg;
	runner_thread    *threads;
	int               started;
	atomic_bool       stopping;
};

cm_err
cm_runner_run_one(cm_runner *r, void (*run)(void *arg, cm_runner *r, const cm_jobs_task *t),
                  void *arg, bool *ran)
{
	cm_jobs_task t;
	int          n = 0;
	cm_err       err;

	*ran = false;
	if ((err = cm_jobs_claim(r->jobs, &t, 1, &n)) != CM_OK || n == 0)
		return err;
	*ran = true;
	run(arg, r, &t);
	cm_jobs_tasks_fini(&t, n);
	return CM_OK;
}

/* The thread's connections and state; false (logged) when it cannot run. */
static bool
runner_open(cm_runners *p, cm_runner *r, cm_jobs_listener **l)
{
	const cm_runners_config *c = &p->cfg;

	if (cm_pg_open(&r->pg, c->database_url, c->schema) != CM_OK ||
	    cm_redis_open(&r->redis, c->redis_host, c->redis_port, CM_REDIS_TIMEOUT_MS) != CM_OK ||
	    cm_jobs_open(&r->jobs, r->pg, &c->jobs) != CM_OK ||
	    cm_jobs_listener_open(l, c->database_url, c->jobs.channel) != CM_OK ||
	    (c->thread_init != NULL && c->thread_init(c->arg, r) != CM_OK)) {
		cm_error("RUNNER-INIT", "%s: runner %d could not start", c->name, r->index);
		return false;
	}
	return true;
}

static void *
runner_main(void *arg)
{
	runner_thread           *rt = arg;
	cm_runners              *p = rt->pool;
	const cm_runners_config *c = &p->cfg;
	cm_runner               *r = &rt->r;
	cm_jobs_listener        *l = NULL;
	int wait_ms = c->poll_ms < CM_RUNNERS_MAX_WAIT_MS ? c->poll_ms : CM_RUNNERS_MAX_WAIT_MS;
	bool inited = runner_open(p, r, &l);

	while (inited && !atomic_load(&p->stopping)) {
		bool ran = false, notified;
		if (cm_runner_run_one(r, c->run, c->arg, &ran) == CM_OK && ran)
			continue;
		if (c->idle != NULL)
			c->idle(c->arg, r);
		if (cm_jobs_listener_wait(l, wait_ms, &notified) != CM_OK)
			cm_debug("RUNNER-WAIT", "%s: LISTEN wait failed; polling", c->name);
	}
	if (inited && c->thread_fini != NULL)
		c->thread_fini(c->arg, r);
	cm_jobs_listener_close(l);
	cm_jobs_close(r->jobs);
	cm_redis_close(r->redis);
	cm_pg_close(r->pg);
	return NULL;
}

cm_err
cm_runners_start(cm_runners **out, const cm_runners_config *cfg)
{
	cm_runners *p;

	*out = NULL;
	if (cfg->threads < 1 || cfg->run == NULL)
		return CM_EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->threads = calloc((size_t)cfg->threads, sizeof(*p->threads))) == NULL) {
		free(p);
		return CM_ENOMEM;
	}
	p->cfg = *cfg;
	atomic_init(&p->stopping, false);
	for (int i = 0; i < cfg->threads; i++) {
		p->threads[i].pool = p;
		p->threads[i].r.index = i;
		if (pthread_create(&p->threads[i].thread, NULL, runner_main, &p->threads[i]) != 0) {
			cm_runners_stop(p);
			return CM_EINTERNAL;
		}
		p->started++;
	}
	*out = p;
	return CM_OK;
}

void
cm_runners_stop(cm_runners *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->stopping, true);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i].thread, NULL);
	free(p->threads);
	free(p);
}
