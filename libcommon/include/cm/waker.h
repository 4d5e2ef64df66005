/*
 * waker.h - how a background thread waits between its rounds: up to a time, or until another
 * thread wakes it for work or stops it.
 *
 * One mutex and one condition variable on CLOCK_MONOTONIC (a wall-clock jump neither wakes a
 * thread early nor holds it late). A wake that comes while the thread is busy is not lost: the
 * next pause returns at once. Used by the deletion-log follower (follow.c) and svc-pdf's indexer.
 */
#ifndef CM_WAKER_H
#define CM_WAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"

typedef struct cm_waker {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop, woken; /* guarded by mu */
} cm_waker;

CM_MUSTCHECK cm_err cm_waker_init(cm_waker *w);
void                cm_waker_fini(cm_waker *w);
/* Waits up to ms (0: not at all), or until woken or stopped; consumes a wake. False once
 * stopping. */
bool cm_waker_pause(cm_waker *w, int64_t ms);
/* The next (or the current) pause returns now. Thread-safe, never blocks for long. */
void cm_waker_wake(cm_waker *w);
/* Every pause from now on returns false. */
void cm_waker_stop(cm_waker *w);

#endif
