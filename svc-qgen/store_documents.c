/*
 * store_documents.c - svc-qgen's SQL for deleted documents (store.h): the tombstones that keep a
 * set from being created for a document whose deletion has been applied (cascade.c).
 */
#include <inttypes.h>
#include <stdio.h>

#include "cm/util.h"
#include "store.h"

cm_err
qgen_store_mark_deleted(cm_pg *pg, const char *document_id)
{
	const char *p[1] = {document_id};

	if (!cm_uuid_valid(document_id))
		return CM_OK; /* no set can name it */
	return cm_pg_exec(pg,
	                  "INSERT INTO known_documents (document_id, deleted_at)"
	                  " VALUES ($1::uuid, now()) ON CONFLICT (document_id) DO UPDATE"
	                  " SET deleted_at = coalesce(known_documents.deleted_at, now())",
	                  1, p, NULL);
}

cm_err
qgen_store_prune_deleted(cm_pg *pg, int64_t max_age_s)
{
	char        age[24];
	const char *p[1] = {age};

	snprintf(age, sizeof(age), "%" PRId64, max_age_s);
	return cm_pg_exec(pg,
	                  "DELETE FROM known_documents WHERE deleted_at IS NOT NULL"
	                  " AND deleted_at < now() - make_interval(secs => $1::bigint)",
	                  1, p, NULL);
}
