/*
 * jobs_schema.c - the tables of the job queue, as migration text a service embeds (see jobs.h).
 *
 * DESIGN. Table names are unqualified so the tables land in the schema on the connection's
 * search_path. Statuses are text with CHECK constraints (readable in psql, stable across
 * versions). Partial indexes serve the two claim paths (queued tasks in claim order, running
 * ones by lease_until) and renewals by lease owner, so they stay small: finished tasks drop out,
 * and the open tasks of a job that is cancelled or failed are moved to 'cancelled' for that.
 * Tasks go with their job (ON DELETE CASCADE), so pruning old jobs is one DELETE on jobs.
 */
#include "cm/jobs.h"

const char cm_jobs_migration_up[] =
    "CREATE TABLE jobs (\n"
    "  id               uuid PRIMARY KEY,\n"
    "  kind             text NOT NULL,\n"
    "  owner            text NOT NULL,\n"
    "  status           text NOT NULL DEFAULT 'queued'\n"
    "                   CHECK (status IN ('queued','running','succeeded','failed','cancelled')),\n"
    "  params           bytea,\n"
    "  total            int NOT NULL CHECK (total >= 0),\n"
    "  done             int NOT NULL DEFAULT 0 CHECK (done >= 0 AND done <= total),\n"
    "  error            text,\n"
    "  result_id        text,\n"
    "  cancel_requested boolean NOT NULL DEFAULT false,\n"
    "  created_at       timestamptz NOT NULL DEFAULT now(),\n"
    "  updated_at       timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE INDEX jobs_owner_created ON jobs (owner, created_at DESC);\n"
    "CREATE INDEX jobs_finished ON jobs (updated_at)\n"
    "  WHERE status IN ('succeeded','failed','cancelled');\n"
    "CREATE TABLE tasks (\n"
    "  job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,\n"
    "  idx         int NOT NULL CHECK (idx >= 0),\n"
    "  status      text NOT NULL DEFAULT 'queued'\n"
    "              CHECK (status IN ('queued','running','succeeded','failed','cancelled')),\n"
    "  attempts    int NOT NULL DEFAULT 0,\n"
    "  lease_owner text,\n"
    "  lease_until timestamptz,\n"
    "  not_before  timestamptz NOT NULL DEFAULT now(),\n"
    "  last_error  text,\n"
    "  result      bytea,\n"
    "  updated_at  timestamptz NOT NULL DEFAULT now(),\n"
    "  PRIMARY KEY (job_id, idx)\n"
    ");\n"
    "CREATE INDEX tasks_queued ON tasks (not_before, job_id, idx) WHERE status = 'queued';\n"
    "CREATE INDEX tasks_leased ON tasks (lease_until) WHERE status = 'running';\n"
    "CREATE INDEX tasks_lease_owner ON tasks (lease_owner) WHERE status = 'running';\n";

const char cm_jobs_migration_down[] = "DROP TABLE tasks;\n"
                                      "DROP TABLE jobs;\n";
