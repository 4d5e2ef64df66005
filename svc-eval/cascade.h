/*
 * cascade.h - svc-eval follows svc-pdf's deletion log (pdf.Deletions): when a document is
 * deleted, its owner's attempts graded against it go with their results, and the grading jobs
 * still running for them are cancelled (cascade.c).
 *
 * As in svc-qgen (its cascade.h): every svc-eval replica runs a follower (libcommon cm/follow.h)
 * that applies the log and moves its cursor in one transaction, so no attempt outlives its
 * document, even when svc-eval was down at the time of the deletion. An attempt being stored
 * while the deletion is applied is deleted with the others or refused (store.h). The grade cache
 * (by question and answer, not by document) stays: it holds no document's text.
 */
#ifndef EVAL_CASCADE_H
#define EVAL_CASCADE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/pg.h"

/* Applies one deletion with pg inside the caller's transaction (a cm_follow_apply_fn; arg is
 * the eval_service): tombstones the document, deletes the owner's attempts of it and cancels
 * their unfinished jobs. Idempotent. */
CM_MUSTCHECK cm_err eval_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id,
                                       const char *owner);

#endif
