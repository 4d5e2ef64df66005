-- The per-user quota counts an owner's unfinished jobs at every Create (handlers.c): a partial
-- index keeps that count to the owner's few open jobs instead of every job they ever made.
CREATE INDEX jobs_owner_active ON jobs (owner) WHERE status IN ('queued', 'running');
