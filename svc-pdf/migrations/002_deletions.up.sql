-- The deletion log: one row per deleted document, written in the transaction that deletes it,
-- for the services that keep data about documents (svc-qgen's question sets; later svc-eval,
-- svc-chat). They read it with pdf.Deletions and keep their own cursor (libcommon cm/follow.h).
-- seq grows in commit order: a deletion takes this table's lock before it takes its number
-- (store.c), so a reader that has seen seq N never later finds a smaller one committed.
CREATE TABLE deletions (
    seq         bigserial PRIMARY KEY,
    document_id uuid NOT NULL,
    owner_id    text NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The log's identity, sent with every answer: if the log is ever made anew (this migration run
-- again after a down), its seq starts over, and a follower that sees another id starts over too
-- instead of waiting for seq to pass its old cursor.
CREATE TABLE deletions_log (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO deletions_log DEFAULT VALUES;
