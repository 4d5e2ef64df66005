/*
 * runners.c - job-runner threads (cm/runners.h).
 *
 * DESIGN. Each runner thread builds its own connections and the service's state around them,
 * then alternates claim-and-run with an idle wait. One LISTEN connection per pool (not one per
 * runner: a replica with 16 runners would hold 16 idle connections) is read by a listener thread
 * that bumps a generation counter and wakes every idle runner; a runner also wakes every poll
 * interval, because retries that come due and expired leases are only found by polling. The
 * pool's shared state - the stopping flag and the wake-up generation - sits under one mutex.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/runners.h"

typedef struct runner_thread {
	cm_runners      *pool;
	pthread_t        thread;
	cm_service_conns conns;
	void            *state;
} runner_thread;

struct cm_runners {
	cm_runners_config cfg;
	runner_thread    *threads;
	int               started;
	atomic_bool       stopping;
	int               wait_ms;
	pthread_t         listener;
	bool              listening;
	pthread_mutex_t   mu;
	pthread_cond_t    wake; /* generation changed or stopping */
	uint64_t          generation;
};

/* Waits until the generation moves past seen, stopping, or wait_ms pass. */
static void
idle_wait(cm_runners *p, uint64_t seen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += p->wait_ms / 1000;
	ts.tv_nsec += (long)(p->wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while (p->generation == seen && !atomic_load(&p->stopping))
		if (pthread_cond_timedwait(&p->wake, &p->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&p->mu);
}

static uint64_t
generation(cm_runners *p)
{
	uint64_t g;

	pthread_mutex_lock(&p->mu);
	g = p->generation;
	pthread_mutex_unlock(&p->mu);
	return g;
}

/* The pool's one LISTEN connection: each notification wakes every idle runner. */
static void *
listener_main(void *arg)
{
	cm_runners       *p = arg;
	cm_jobs_listener *l = NULL;

	if (cm_jobs_listener_open(&l, p->cfg.common->database_url, p->cfg.jobs.channel) != CM_OK) {
		cm_error("RUNNER-INIT", "%s: no LISTEN connection; runners poll", p->cfg.name);
		return NULL;
	}
	while (!atomic_load(&p->stopping)) {
		bool notified = false;
		if (cm_jobs_listener_wait(l, p->wait_ms, &notified) != CM_OK)
			cm_debug("RUNNER-WAIT", "%s: LISTEN wait failed; polling", p->cfg.name);
		if (notified) {
			pthread_mutex_lock(&p->mu);
			p->generation++;
			pthread_cond_broadcast(&p->wake);
			pthread_mutex_unlock(&p->mu);
		}
	}
	cm_jobs_listener_close(l);
	return NULL;
}

cm_err
cm_runner_run_one(cm_jobs *jobs, void (*run)(void *arg, void *state, const cm_jobs_task *t),
                  void *arg, void *state, bool *ran)
{
	cm_jobs_task t;
	int          n = 0;
	cm_err       err;

	*ran = false;
	if ((err = cm_jobs_claim(jobs, &t, 1, &n)) != CM_OK || n == 0)
		return err;
	*ran = true;
	run(arg, state, &t);
	cm_jobs_tasks_fini(&t, n);
	return CM_OK;
}

/* The thread's connections and state; false (logged) when it cannot run. */
static bool
runner_open(cm_runners *p, runner_thread *rt)
{
	const cm_runners_config *c = &p->cfg;

	if (cm_service_conns_open(&rt->conns, c->common, c->schema, &c->jobs) != CM_OK ||
	    (c->thread_init != NULL && c->thread_init(c->arg, &rt->conns, &rt->state) != CM_OK)) {
		cm_error("RUNNER-INIT", "%s: runner %d could not start", c->name, rt->conns.index);
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
	bool                     inited = runner_open(p, rt);

	while (inited && !atomic_load(&p->stopping)) {
		/* The generation before claiming: a notification during the claim is not missed. */
		uint64_t seen = generation(p);
		bool     ran = false;
		if (cm_runner_run_one(rt->conns.jobs, c->run, c->arg, rt->state, &ran) == CM_OK &&
		    ran)
			continue;
		if (c->idle != NULL)
			c->idle(c->arg, rt->state);
		idle_wait(p, seen);
	}
	if (inited && c->thread_fini != NULL)
		c->thread_fini(c->arg, rt->state);
	cm_service_conns_close(&rt->conns);
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
	p->wait_ms = cfg->poll_ms > 0 && cfg->poll_ms < CM_RUNNERS_MAX_WAIT_MS
	                 ? cfg->poll_ms
	                 : CM_RUNNERS_MAX_WAIT_MS;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->listener, NULL, listener_main, p) != 0) {
		cm_runners_stop(p);
		return CM_EINTERNAL;
	}
	p->listening = true;
	for (int i = 0; i < cfg->threads; i++) {
		p->threads[i].pool = p;
		p->threads[i].conns.index = i;
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
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stopping, true);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i].thread, NULL);
	if (p->listening)
		pthread_join(p->listener, NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
