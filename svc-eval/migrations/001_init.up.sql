-- svc-eval: attempts, their per-answer results, and the durable grade cache. The job queue's
-- tables (jobs, tasks) are migration 2 (cm_jobs_migration_up); file migrations go on from 003.
CREATE TABLE attempts (
  id               uuid PRIMARY KEY,
  owner_id         text NOT NULL,
  question_set_id  uuid,                 -- NULL: a legacy attempt (inline questions)
  document_id      uuid,                 -- the document the answers are graded against
  document_sha256  text NOT NULL DEFAULT '', -- its bytes' hash (legacy): source text is cached by it
  job_id           uuid,                 -- NULL when nothing needed the model
  status           text NOT NULL CHECK (status IN ('queued','running','succeeded','failed')),
  strictness       text NOT NULL CHECK (strictness IN ('easy','medium','strict')),
  want_overall     boolean NOT NULL DEFAULT false,
  topic            text NOT NULL DEFAULT '',
  overall_done     boolean NOT NULL DEFAULT false,
  overall_feedback text NOT NULL DEFAULT '',
  strengths        jsonb NOT NULL DEFAULT '[]',
  areas            jsonb NOT NULL DEFAULT '[]',
  study            jsonb NOT NULL DEFAULT '[]',
  error            text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_owner ON attempts (owner_id, created_at DESC);
CREATE INDEX attempts_job ON attempts (job_id) WHERE job_id IS NOT NULL;

-- One row per answer, in input order (idx). A pending row is graded by the attempt's job; a
-- batch's grades are written in one statement that only touches rows still pending, so a
-- replica that resumes an attempt never pays for, nor overwrites, a stored grade.
CREATE TABLE results (
  attempt_id  uuid NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
  idx         int NOT NULL CHECK (idx >= 0),
  question_id text NOT NULL,
  type        text NOT NULL CHECK (type IN ('mcq','open')),
  status      text NOT NULL CHECK (status IN ('graded','pending','failed')),
  question    text NOT NULL DEFAULT '',
  reference   text NOT NULL DEFAULT '',
  page        int NOT NULL DEFAULT 0,
  answer      text NOT NULL DEFAULT '',
  via_model   boolean NOT NULL DEFAULT false,   -- pending when submitted: the job's work
  score       int NOT NULL DEFAULT 0 CHECK (score BETWEEN 0 AND 10),
  correct     boolean NOT NULL DEFAULT false,
  feedback    text NOT NULL DEFAULT '',
  suggestions text NOT NULL DEFAULT '',
  hint        text NOT NULL DEFAULT '',
  error       text NOT NULL DEFAULT '',
  source      text NOT NULL DEFAULT '',         -- rule | model | cache | offline
  batch       int,                              -- the model call that graded it
  graded_at   timestamptz,
  PRIMARY KEY (attempt_id, idx)
);

-- Grades by (question key, strictness, model, normalised answer): the durable copy behind the
-- Redis cache, and where near-identical answers are looked for.
CREATE TABLE grade_cache (
  qkey        text NOT NULL,
  strictness  text NOT NULL,
  model       text NOT NULL,
  norm_hash   text NOT NULL,
  norm        text NOT NULL,
  score       int NOT NULL CHECK (score BETWEEN 0 AND 10),
  feedback    text NOT NULL,
  suggestions text NOT NULL,
  hint        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (qkey, strictness, model, norm_hash)
);
CREATE INDEX grade_cache_recent ON grade_cache (qkey, strictness, model, created_at DESC);
CREATE INDEX grade_cache_age ON grade_cache (created_at);
