/*
 * retrieve.h - the passages a question is answered from, asked of svc-pdf as the caller.
 *
 * pdf.Search ranks the document's chunks for the question (every word, else some key terms,
 * else similar spelling: svc-pdf/search.h); when nothing matches, the chunks of the first
 * CHAT_FALLBACK_PAGES pages stand in (passages.from_start), so "summarise this" still has text.
 * Each chunk that runs over several pages is cut into its pages (passages.h), with the text of
 * its later pages fetched by pdf.GetPage (once per page per question). Every call is made as the
 * caller (the envelope's subject): another user's document is NOT_FOUND there.
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

/* Fills ps (initialised with its budget) for question on document_id. Errors: CM_ENOTFOUND (the
 * document is gone or not the caller's), CM_EUNAVAIL / CM_ETIMEDOUT (svc-pdf), CM_ENOMEM; why
 * receives a sentence for people. Each call is bounded by CHAT_PDF_TIMEOUT_MS. */
CM_MUSTCHECK cm_err chat_retrieve(chat_service *s, const chat_caller *who, const char *document_id,
                                  const char *question, chat_passages *ps, char *why,
                                  size_t whylen);

#endif
