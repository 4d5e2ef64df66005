/*
 * cascade.c - a deleted document's question sets go, and their jobs stop (cascade.h).
 *
 * DESIGN. Everything an entry does happens in the follower's transaction, with the cursor move:
 *   1. mark the document deleted (cm_follow_tombstone, cm/follow.h): this takes the row every
 *      set insert takes first, so a set being created right now is either committed before (and
 * deleted in 2) or refused after (qgen_store_insert_set answers CM_ENOTFOUND); without it, a Create
 * that had read the document from svc-pdf just before the deletion could leave a set behind;
 *   2. delete the owner's sets of the document with their stored batches;
 *   3. cancel their unfinished jobs, so runners stop calling the model. Inside the transaction a
 *      cancel holds the job row until the commit (cm/jobs.h); should that ever deadlock with a
 *      runner finishing the same job, PostgreSQL aborts one side and ours is simply retried.
 * A failure anywhere rolls it all back and the follower retries the entry. The "job.done"
 * events go out before the commit: events are notifications (GET is the truth), and a retry
 * sends them again.
 */
#include <string.h>

#include "cascade.h"
#include "cm/jobs.h"
#include "cm/log.h"
#include "cm/util.h"
#include "store.h"

typedef struct cancel_ctx {
	qgen_service *svc;
	cm_jobs      *jobs;
	const char   *owner;
	cm_err        err; /* the first failure: the entry is retried */
} cancel_ctx;

static void
cancel_job(void *arg, const char *job_id)
{
	cancel_ctx *c = arg;
	cm_err      err;

	if (job_id[0] == '\0' || c->err != CM_OK)
		return; /* a cached set has no job */
	/* A finished job refuses (CM_EPRECOND): nothing to stop. */
	err = cm_jobs_cancel(c->jobs, job_id, c->owner);
	if (err == CM_OK)
		qgen_publish(c->svc, "job.done", job_id, c->owner, 0, 0, "cancelled");
	else if (err != CM_EPRECOND && err != CM_ENOTFOUND)
		c->err = err;
}

cm_err
qgen_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id, const char *owner)
{
	qgen_service   *s = arg;
	cm_jobs_options jo;
	cancel_ctx      cc = {s, NULL, owner, CM_OK};
	int             n = 0;
	cm_err          err;

	memset(&jo, 0, sizeof(jo));
	jo.channel = QGEN_CHANNEL;
	if (!cm_uuid_valid(document_id)) {
		cm_warn("QGEN-CASCADE-SKIP", "deletion %lld names no document id: '%.40s'",
		        (long long)seq, document_id);
		return CM_OK;
	}
	if ((err = cm_follow_tombstone(pg, document_id)) != CM_OK ||
	    (err = cm_jobs_open(&cc.jobs, pg, &jo)) != CM_OK)
		goto out;
	if ((err = qgen_store_delete_document(pg, document_id, owner, cancel_job, &cc, &n)) ==
	    CM_OK)
		err = cc.err;
	if (err == CM_OK)
		err = cm_follow_prune_tombstones(pg, CM_FOLLOW_TOMBSTONE_S);
	if (err == CM_OK && n > 0)
		cm_info("QGEN-DOC-DELETED", "document %s (deletion %lld): %d question sets deleted",
		        document_id, (long long)seq, n);
out:
	cm_jobs_close(cc.jobs);
	return err;
}

void
qgen_cascade_config(qgen_service *s, cm_follower_config *cfg)
{
	cm_follow_pdf_deletions(cfg, s->pdf, s->common.database_url,
	                        s->schema != NULL ? s->schema : QGEN_SCHEMA, qgen_cascade_apply, s);
}

cm_err
qgen_cascade_start(qgen_service *s, cm_follower **out)
{
	cm_follower_config cfg;

	qgen_cascade_config(s, &cfg);
	return cm_follower_start(out, &cfg);
}

void
qgen_cascade_stop(cm_follower *f)
{
	cm_follower_stop(f);
}
