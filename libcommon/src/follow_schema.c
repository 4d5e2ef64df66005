/*
 * follow_schema.c - what a consumer of a deletion log keeps and shares (follow.h): its cursors and
 * the tombstones of deleted documents as migration text a service embeds, the tombstone SQL, and
 * the settings of svc-pdf's log.
 *
 * DESIGN. The tombstone is the row that orders creating something for a document against
 * deleting what belongs to it. A create takes the document's row in the same statement
 * (CM_FOLLOW_LIVE_DOCUMENT: an upsert that locks it) and inserts nothing when it carries a
 * deletion time; applying a deletion marks the row first (even for a document never seen). So a
 * row created while a deletion is applied is either committed before (and deleted by it) or made
 * to wait for the deletion's commit and then refused: never left behind. Tombstones are pruned
 * after a day: by then no request can still hold the document, its producer refuses it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cm/follow.h"
#include "cm/util.h"

const char cm_follow_migration_up[] =
    "CREATE TABLE follow_cursors (\n"
    "  source     text PRIMARY KEY,\n"
    "  seq        bigint NOT NULL DEFAULT 0,\n"
    "  log_id     text NOT NULL DEFAULT '',\n"
    "  updated_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE known_documents (\n"
    "  document_id uuid PRIMARY KEY,\n"
    "  deleted_at  timestamptz -- NULL while the document exists\n"
    ");\n"
    "CREATE INDEX known_documents_deleted_idx ON known_documents (deleted_at)\n"
    "  WHERE deleted_at IS NOT NULL;\n";

const char cm_follow_migration_down[] = "DROP TABLE IF EXISTS known_documents;\n"
                                        "DROP TABLE IF EXISTS follow_cursors;\n";

cm_err
cm_follow_tombstone(cm_pg *pg, const char *document_id)
{
	const char *p[1] = {document_id};

	if (!cm_uuid_valid(document_id))
		return CM_OK; /* nothing can name it */
	return cm_pg_exec(pg,
	                  "INSERT INTO known_documents (document_id, deleted_at)"
	                  " VALUES ($1::uuid, now()) ON CONFLICT (document_id) DO UPDATE"
	                  " SET deleted_at = coalesce(known_documents.deleted_at, now())",
	                  1, p, NULL);
}

cm_err
cm_follow_prune_tombstones(cm_pg *pg, int64_t max_age_s)
{
	char        age[24];
	const char *p[1] = {age};

	snprintf(age, sizeof(age), "%" PRId64, max_age_s);
	return cm_pg_exec(pg,
	                  "DELETE FROM known_documents WHERE deleted_at IS NOT NULL"
	                  " AND deleted_at < now() - make_interval(secs => $1::bigint)",
	                  1, p, NULL);
}

void
cm_follow_pdf_deletions(cm_follower_config *cfg, cm_rpc_client *pdf, const char *database_url,
                        const char *schema, cm_follow_apply_fn apply, void *arg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->source = CM_FOLLOW_PDF_SOURCE;
	cfg->client = pdf;
	cfg->method = CM_FOLLOW_PDF_SOURCE;
	cfg->rpc_timeout_ms = CM_FOLLOW_PDF_TIMEOUT_MS;
	cfg->database_url = database_url;
	cfg->schema = schema;
	cfg->poll_ms = CM_FOLLOW_PDF_POLL_MS;
	cfg->apply = apply;
	cfg->arg = arg;
}
