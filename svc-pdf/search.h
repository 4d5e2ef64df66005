/*
 * search.h - pdf.Search's ranking: every word of the query first, then fallbacks, so that a
 * question in natural language finds the passages it is about.
 *
 *   1. "all":     chunks holding every word (plainto_tsquery('simple'), ts_rank): the search as
 *                 it always was; when it finds anything, that is the answer. Callers that do not
 *                 ask for the fallbacks (SearchRequest.fallback) get only this stage.
 *   2. "some":    chunks holding some of the query's key terms (terms.h: stop words dropped,
 *                 long words matched as prefixes), most distinct terms first, then ts_rank.
 *   3. "similar": chunks with words spelled like the query's terms (pg_trgm word_similarity),
 *                 when the extension is installed (migration 003); else skipped.
 * Each stage runs only when the ones before found nothing; a query with no key terms at all
 * ("what is it?") stops after stage 1.
 */
#ifndef PDF_SEARCH_H
#define PDF_SEARCH_H

#include <stdbool.h>

#include "cm/err.h"
#include "cm/pg.h"
#include "store.h"

/* Chunks of the owner's document for query, best first, at most limit; stages 2 and 3 only
 * with fallback. *match names the stage that found them ("all", "some", "similar"), or "" when
 * none did (then *out has no chunks). CM_ENOTFOUND when the document is not the owner's. *sha
 * points into *out. */
CM_MUSTCHECK cm_err pdf_search(cm_pg *pg, const char *owner, const char *id, const char *query,
                               int limit, bool fallback, pdf_rows **out, const char **sha,
                               const char **match);

#endif
