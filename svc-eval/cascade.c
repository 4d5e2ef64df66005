/*
 * cascade.c - a deleted document's attempts go, and their grading stops (cascade.h).
 *
 * DESIGN. One entry, inside the follower's transaction with the cursor move: the tombstone
 * first (it takes the row every attempt insert takes, so an attempt being stored now is
 * committed before and deleted here, or refused after), then the owner's attempts of the
 * document (results by their foreign key), cancelling each unfinished job so runners stop
 * calling the model; a runner that is mid-batch finds its attempt gone and its job cancelled.
 * Inside the transaction a cancel holds the job row until the commit (cm/jobs.h); a deadlock
 * with a runner finishing the same job aborts one side, and ours is retried. A failure anywhere
 * rolls it all back and the follower retries the entry. The "job.done" events go out before the
 * commit: events are notifications (GET is the truth), and a retry sends them again.
 */
#include <string.h>

#include "cascade.h"
#include "cm/follow.h"
#include "cm/jobs.h"
#include "cm/log.h"
#include "cm/util.h"
#include "server.h"
#include "store.h"

typedef struct cancel_ctx {
	eval_service *svc;
	cm_jobs      *jobs;
	const char   *owner;
	cm_err        err; /* the first failure: the entry is retried */
} cancel_ctx;

static void
cancel_job(void *arg, const char *job_id)
{
	cancel_ctx *c = arg;
	cm_err      err;

	if (c->err != CM_OK)
		return;
	/* A finished job refuses (CM_EPRECOND): nothing to stop. */
	err = cm_jobs_cancel(c->jobs, job_id, c->owner);
	if (err == CM_OK)
		eval_publish(c->svc, "job.done", job_id, c->owner, 0, 0, "cancelled");
	else if (err != CM_EPRECOND && err != CM_ENOTFOUND)
		c->err = err;
}

cm_err
eval_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id, const char *owner)
{
	eval_service   *s = arg;
	cm_jobs_options jo;
	cancel_ctx      cc = {s, NULL, owner, CM_OK};
	int             n = 0;
	cm_err          err;

	if (!cm_uuid_valid(document_id)) {
		cm_warn("EVAL-CASCADE-SKIP", "deletion %lld names no document id: '%.40s'",
		        (long long)seq, document_id);
		return CM_OK;
	}
	eval_jobs_options(s, &jo);
	if ((err = cm_follow_tombstone(pg, document_id)) != CM_OK ||
	    (err = cm_jobs_open(&cc.jobs, pg, &jo)) != CM_OK)
		goto out;
	if ((err = eval_store_delete_document(pg, document_id, owner, cancel_job, &cc, &n)) ==
	    CM_OK)
		err = cc.err;
	if (err == CM_OK)
		err = cm_follow_prune_tombstones(pg, CM_FOLLOW_TOMBSTONE_S);
	if (err == CM_OK && n > 0)
		cm_info("EVAL-DOC-DELETED", "document %s (deletion %lld): %d attempts deleted",
		        document_id, (long long)seq, n);
out:
	cm_jobs_close(cc.jobs);
	return err;
}
