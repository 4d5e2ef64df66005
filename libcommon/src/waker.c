/*
 * waker.c - a background thread's pause (waker.h).
 */
#include <errno.h>
#include <time.h>

#include "cm/waker.h"

cm_err
cm_waker_init(cm_waker *w)
{
	pthread_condattr_t ca;
	int                rc;

	w->stop = w->woken = false;
	if (pthread_condattr_init(&ca) != 0)
		return CM_ENOMEM;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return CM_ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	return CM_OK;
}

void
cm_waker_fini(cm_waker *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

bool
cm_waker_pause(cm_waker *w, int64_t ms)
{
	struct timespec until;
	bool            go;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->stop && !w->woken && ms > 0)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	w->woken = false;
	go = !w->stop;
	pthread_mutex_unlock(&w->mu);
	return go;
}

void
cm_waker_wake(cm_waker *w)
{
	pthread_mutex_lock(&w->mu);
	w->woken = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
cm_waker_stop(cm_waker *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}
