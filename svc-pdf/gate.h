/*
 * gate.h - the bound on one user's concurrent uploads in this replica (PDF_USER_MAX_ACTIVE).
 *
 * An upload holds an RPC worker for as long as its extraction runs (up to the extraction's time
 * allowance for a hostile file), and svc-pdf has few workers (PDF_WORKERS, 2 by default). The
 * gate keeps any one user from holding more than max of them: the upload handler enters before
 * any work and leaves on its one exit path, so every outcome (success, refusal, error, time
 * out) gives the place back. A user at the bound is refused at once, never queued.
 *
 * Per replica, in memory: what it protects is this replica's workers, it needs no round trip,
 * and it cannot leak past a crash (it dies with the process). Thread-safe (one mutex; the table
 * holds only the users with an upload in progress, so at most one entry per worker).
 */
#ifndef PDF_GATE_H
#define PDF_GATE_H

#include "cm/err.h"

typedef struct pdf_gate pdf_gate;

/* max: concurrent uploads per user (0: no bound). */
CM_MUSTCHECK cm_err pdf_gate_alloc(pdf_gate **out, int max);
void                pdf_gate_free(pdf_gate *g);

/* Takes one of owner's places (owner is copied). CM_OK: give it back with pdf_gate_leave;
 * CM_ELIMIT: owner holds max already; CM_ENOMEM. */
CM_MUSTCHECK cm_err pdf_gate_enter(pdf_gate *g, const char *owner);
/* Gives back a place taken by pdf_gate_enter. */
void pdf_gate_leave(pdf_gate *g, const char *owner);
/* Places owner holds now (tests, logs). */
int pdf_gate_held(pdf_gate *g, const char *owner);

#endif
