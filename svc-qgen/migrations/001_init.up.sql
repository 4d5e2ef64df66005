-- svc-qgen schema "qgen" (the connection's search_path). A question set is one generation request
-- of one user; its questions are stored with it as one packed qgen.QuestionList, written once
-- when the set succeeds. Batches are the validated output of single LLM calls of a running job,
-- kept so that a replica taking over a job (lease expired) reuses the calls already made.
CREATE TABLE question_sets (
    id             uuid PRIMARY KEY,
    owner_id       text NOT NULL,
    document_id    uuid NOT NULL,
    sha256         text NOT NULL,
    job_id         uuid UNIQUE,
    status         text NOT NULL
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    count          integer NOT NULL CHECK (count BETWEEN 1 AND 200),
    types          text NOT NULL,
    difficulty     text NOT NULL,
    topic          text NOT NULL DEFAULT '',
    first_page     integer NOT NULL DEFAULT 0,
    last_page      integer NOT NULL DEFAULT 0,
    cached         boolean NOT NULL DEFAULT false,
    progress       integer NOT NULL DEFAULT 0,
    error          text NOT NULL DEFAULT '',
    questions      bytea,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX question_sets_owner_idx ON question_sets (owner_id, created_at DESC);
CREATE INDEX question_sets_document_idx ON question_sets (document_id);

CREATE TABLE batches (
    job_id     uuid NOT NULL,
    idx        integer NOT NULL CHECK (idx >= 0),
    questions  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, idx)
);
