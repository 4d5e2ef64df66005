/*
 * retrieve.h - the passages a question is answered from, asked of svc-pdf as the caller.
 *
 * pdf.Search ranks the document's chunks for the question (every word, else some key terms,
 * else similar spelling: svc-pdf/search.h); when nothing matches, the chunks of the first
 * CHAT_FALLBACK_PAGES pages stand in (passages.from_start), so "summarise this" still has text.
 * Each chunk that runs over several pages is cut into its pages (passages.h), where its later
 * pages start: pdf.Search sends the start of each (Chunk.page_heads); from a svc-pdf that does
 * not, the pages are fetched with pdf.GetPage (once per page per question). Every call is made as
 * the caller (the envelope's subject): another user's document is NOT_FOUND there.
 */
#ifndef CHAT_RETRIEVE_H
#define CHAT_RETRIEVE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "passages.h"
#include "server.h"

typedef struct chat_caller {
	const char *subject;
	const char *request_id;
} chat_caller;

/* The search runs while the caller does other work (the turn's admission and history): start
 * sends pdf.Search without waiting; finish waits for its answer and builds the passages;
 * abandon waits for it and drops it (a refused turn). Exactly one of finish / abandon follows a
 * start; both free the search. who's strings must stay valid until then. */
typedef struct chat_search chat_search;
CM_MUSTCHECK cm_err        chat_search_start(chat_service *s, const chat_caller *who,
                                             const char *document_id, const char *question,
                                             chat_search **out);
void                       chat_search_abandon(chat_search *q);

/* Fills ps (initialised with its budget). Errors: CM_ENOTFOUND (the document is gone or not the
 * caller's), CM_EUNAVAIL / CM_ETIMEDOUT (svc-pdf), CM_ENOMEM; why receives a sentence for people.
 * Each call to svc-pdf is bounded by CHAT_PDF_TIMEOUT_MS. */
CM_MUSTCHECK cm_err chat_retrieve_finish(chat_search *q, chat_passages *ps, char *why,
                                         size_t whylen);

/* start + finish. */
CM_MUSTCHECK cm_err chat_retrieve(chat_service *s, const chat_caller *who, const char *document_id,
                                  const char *question, chat_passages *ps, char *why,
                                  size_t whylen);

#endif
