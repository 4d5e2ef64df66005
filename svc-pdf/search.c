/*
 * search.c - pdf.Search's stages (search.h): all words, some key terms, similar spelling.
 *
 * DESIGN: the stages are separate statements, run in order until one finds chunks; the common
 * case (a query whose words are all in the text) costs one statement as before. The rows of a
 * stage that found nothing still carry the document's sha256, so a later stage's failure to
 * find the document cannot happen in between except through a concurrent delete (NOT_FOUND).
 */
#include <stdbool.h>
#include <stddef.h>

#include "cm/log.h"
#include "search.h"
#include "terms.h"

/* tsquery and array texts of PDF_TERMS_MAX terms of PDF_TERM_MAX_LEN bytes, with quoting. */
#define SEARCH_TEXT_MAX (PDF_TERMS_MAX * (PDF_TERM_MAX_LEN + 8) + 8)

/* Replaces *out by next when next found chunks; frees next otherwise. */
static bool
take(pdf_rows **out, const char **sha, pdf_rows *next, const char *next_sha)
{
	if (pdf_rows_nchunks(next) == 0) {
		pdf_rows_free(next);
		return false;
	}
	pdf_rows_free(*out);
	*out = next;
	*sha = next_sha;
	return true;
}

cm_err
pdf_search(cm_pg *pg, const char *owner, const char *id, const char *query, int limit,
           bool fallback, pdf_rows **out, const char **sha, const char **match)
{
	static bool warned; /* pg_trgm missing: said once per process */
	pdf_terms   t;
	pdf_rows   *next = NULL;
	const char *next_sha = NULL;
	char        any[SEARCH_TEXT_MAX], each[SEARCH_TEXT_MAX], words[SEARCH_TEXT_MAX];
	cm_err      err;

	*match = "";
	if ((err = pdf_store_search(pg, owner, id, query, limit, out, sha)) != CM_OK)
		return err;
	if (pdf_rows_nchunks(*out) > 0) {
		*match = "all";
		return CM_OK;
	}
	if (!fallback)
		return CM_OK;
	pdf_terms_parse(query, &t);
	if (t.n == 0 || pdf_terms_tsquery_any(&t, any, sizeof(any)) != CM_OK ||
	    pdf_terms_array(&t, 1, each, sizeof(each)) != CM_OK ||
	    pdf_terms_array(&t, 0, words, sizeof(words)) != CM_OK)
		return CM_OK; /* nothing more to look for: no chunks */

	if ((err = pdf_store_search_some(pg, owner, id, any, each, limit, &next, &next_sha)) !=
	    CM_OK)
		goto fail;
	if (take(out, sha, next, next_sha)) {
		*match = "some";
		return CM_OK;
	}
	next = NULL;
	err = pdf_store_search_similar(pg, owner, id, words, limit, &next, &next_sha);
	if (err == CM_EPRECOND) {
		if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
			cm_warn("PDF-SEARCH-NO-TRGM", "pg_trgm is not installed: pdf.Search has no "
			                              "trigram fallback");
		return CM_OK; /* the first stage's empty answer stands */
	}
	if (err != CM_OK)
		goto fail;
	if (take(out, sha, next, next_sha))
		*match = "similar";
	return CM_OK;
fail:
	pdf_rows_free(*out);
	*out = NULL;
	*sha = NULL;
	return err;
}
