/*
 * cascade.h - svc-qgen follows svc-pdf's deletion log (pdf.Deletions): when a document is
 * deleted, its question sets go and their unfinished jobs are cancelled (cascade.c).
 *
 * The service owns the cascade, not the edge: svc-pdf records the deletion in the transaction
 * that deletes the document, and every svc-qgen replica runs a follower (libcommon cm/follow.h)
 * that applies the log and moves its cursor in one transaction. So a set is never left behind,
 * even when svc-qgen is down or svc-pdf unreachable at the time of the deletion: it goes when
 * the follower next runs (within CM_FOLLOW_PDF_POLL_MS of svc-qgen being up and svc-pdf
 * reachable).
 */
#ifndef QGEN_CASCADE_H
#define QGEN_CASCADE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/follow.h"
#include "server.h"

/* Starts the follower for s (s->pdf is the producer; s must outlive it). The skeleton's start
 * hook runs it after the runners (server.c), its stop hook stops it first. */
CM_MUSTCHECK cm_err qgen_cascade_start(qgen_service *s, cm_follower **out);
/* Stops and frees it; NULL is fine. */
void qgen_cascade_stop(cm_follower *f);

/* The follower's settings for s (tests run rounds with cm_follow_round). */
void qgen_cascade_config(qgen_service *s, cm_follower_config *cfg);
/* Applies one deletion with pg inside the caller's transaction (a cm_follow_apply_fn; arg is
 * the qgen_service): marks the document deleted, deletes its sets with their batches, cancels
 * their unfinished jobs. Idempotent. */
CM_MUSTCHECK cm_err qgen_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id,
                                       const char *owner);

#endif
