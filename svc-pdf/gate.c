/*
 * gate.c - the per-user bound on concurrent uploads (gate.h).
 *
 * DESIGN: an array of (owner, places held) under one mutex, searched linearly: it holds only
 * users with an upload in progress, never more entries than the replica has workers, and an
 * entry goes when its count drops to zero (the last one moves into its slot).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"

typedef struct gate_entry {
	char *owner;
	int   held;
} gate_entry;

struct pdf_gate {
	pthread_mutex_t mu;
	int             max;
	gate_entry     *e;
	size_t          n, cap;
};

cm_err
pdf_gate_alloc(pdf_gate **out, int max)
{
	pdf_gate *g;

	*out = NULL;
	if (max < 0)
		return CM_EINVAL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return CM_ENOMEM;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return CM_ENOMEM;
	}
	g->max = max;
	*out = g;
	return CM_OK;
}

void
pdf_gate_free(pdf_gate *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->e[i].owner);
	free(g->e);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* The entry of owner, or NULL; under g->mu. */
static gate_entry *
find(pdf_gate *g, const char *owner)
{
	for (size_t i = 0; i < g->n; i++) {
		if (strcmp(g->e[i].owner, owner) == 0)
			return &g->e[i];
	}
	return NULL;
}

cm_err
pdf_gate_enter(pdf_gate *g, const char *owner)
{
	gate_entry *e;
	cm_err      err = CM_OK;

	if (g->max == 0)
		return CM_OK;
	pthread_mutex_lock(&g->mu);
	if ((e = find(g, owner)) != NULL) {
		if (e->held >= g->max)
			err = CM_ELIMIT;
		else
			e->held++;
		goto out;
	}
	if (g->n == g->cap) {
		size_t      cap = g->cap == 0 ? 8 : g->cap * 2;
		gate_entry *ne = realloc(g->e, cap * sizeof(*ne));
		if (ne == NULL) {
			err = CM_ENOMEM;
			goto out;
		}
		g->e = ne;
		g->cap = cap;
	}
	if ((g->e[g->n].owner = strdup(owner)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	g->e[g->n].held = 1;
	g->n++;
out:
	pthread_mutex_unlock(&g->mu);
	return err;
}

void
pdf_gate_leave(pdf_gate *g, const char *owner)
{
	gate_entry *e;

	if (g->max == 0)
		return;
	pthread_mutex_lock(&g->mu);
	if ((e = find(g, owner)) != NULL && --e->held == 0) {
		free(e->owner);
		*e = g->e[--g->n];
	}
	pthread_mutex_unlock(&g->mu);
}

int
pdf_gate_held(pdf_gate *g, const char *owner)
{
	gate_entry *e;
	int         n;

	pthread_mutex_lock(&g->mu);
	n = (e = find(g, owner)) != NULL ? e->held : 0;
	pthread_mutex_unlock(&g->mu);
	return n;
}
