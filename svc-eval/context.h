/*
 * context.h - the source text an open answer is graded against, from svc-pdf as the owner:
 * a v1 question's page (pdf.GetPage), or for a legacy item the chunks of the document that best
 * match the question (pdf.Search). At most EVAL_MAX_CONTEXT bytes.
 *
 * The search words come from the reference answer first, then the quoted parts of the question,
 * then the rest of it, longest first within each, leaving out the words of question templates
 * ("explain", "text", "statement", ...): three words, then one (the search wants every word).
 * A legacy attempt knows its document's sha256, and the text found is kept in Redis under
 * (sha256, question, reference) for EVAL_CACHE_TTL_S, so the students of a class who got the
 * same quiz on the same file do not search again. A context also holds the pages fetched for one
 * attempt, so questions on the same page cost one call. Not thread-safe: one per runner.
 */
#ifndef EVAL_CONTEXT_H
#define EVAL_CONTEXT_H

#include "cm/err.h"
#include "server.h"

typedef struct eval_context eval_context;

/* owner, document_id and sha256 ("" when unknown) are borrowed; redis may be down. */
CM_MUSTCHECK cm_err eval_context_alloc(eval_context **out, eval_service *s, cm_redis *redis,
                                       const char *owner, const char *document_id,
                                       const char *sha256);
void                eval_context_free(eval_context *c);

/* *text (malloc'd) is the source text for the question; "" when the document has none for it
 * or is gone. CM_EUNAVAIL when svc-pdf cannot be reached (the caller retries later). */
CM_MUSTCHECK cm_err eval_context_get(eval_context *c, int page, const char *question,
                                     const char *reference, char **text);

#endif
