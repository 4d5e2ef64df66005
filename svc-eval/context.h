/*
 * context.h - the source text an open answer is graded against, from svc-pdf as the owner:
 * a v1 question's page (pdf.GetPage), or for a legacy item the chunks of the document that best
 * match the question (pdf.Search with the question's longest key words: four, then two, then
 * one, since the search wants every word). At most EVAL_MAX_CONTEXT bytes.
 *
 * A context holds the pages fetched for one attempt, so questions on the same page cost one
 * call. Not thread-safe: one per runner.
 */
#ifndef EVAL_CONTEXT_H
#define EVAL_CONTEXT_H

#include "cm/err.h"
#include "server.h"

typedef struct eval_context eval_context;

CM_MUSTCHECK cm_err eval_context_alloc(eval_context **out, eval_service *s, const char *owner,
                                       const char *document_id);
void                eval_context_free(eval_context *c);

/* *text (malloc'd) is the source text for the question; "" when the document has none for it
 * or is gone. CM_EUNAVAIL when svc-pdf cannot be reached (the caller retries later). */
CM_MUSTCHECK cm_err eval_context_get(eval_context *c, int page, const char *question,
                                     const char *reference, char **text);

#endif
