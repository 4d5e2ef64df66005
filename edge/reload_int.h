/*
 * reload_int.h - between reload.c (snapshots, reload, retirement) and configz.c (rendering).
 * Not for other files.
 */
#ifndef EDGE_RELOAD_INT_H
#define EDGE_RELOAD_INT_H

#include <pthread.h>
#include <stdint.h>

#include "reload.h"

typedef struct edge_retired edge_retired;

struct edge_reloader {
	edge         *e;
	edge_retired *retired; /* main thread only */
	int64_t       grace_ms;

	pthread_mutex_t mu; /* the outcome of the last reload, for /configz */
	uint64_t        applied, refused;
	char            last_error[256];
};

/* True for a key whose value /configz and the reload log never show: flagged secret, or named
 * like one (*SECRET*, *KEY*, *PASSWORD*, *TOKEN*). */
bool edge_config_key_secret(const cm_cfg_entry *e);
/* True for a key a reload applies while the edge runs (for this edge: the migration keys only
 * when it started with an old backend). */
bool edge_config_key_live(const edge *e, const char *key);

#endif
