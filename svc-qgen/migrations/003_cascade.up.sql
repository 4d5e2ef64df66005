-- Following svc-pdf's deletion log (svc-qgen/cascade.c, libcommon cm/follow.h).
-- follow_cursors: how far each followed log has been applied (seq, in the log named log_id);
-- moved in the transaction that applies its entries, so a crash loses nothing.
CREATE TABLE follow_cursors (
    source     text PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0,
    log_id     text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- known_documents: the row that orders creating a set against deleting its document's sets.
-- Inserting a set takes it (and inserts nothing when the document is deleted); applying a
-- deletion marks it first (a tombstone, even for a document never seen), so a set created while
-- the deletion is applied is either deleted with the others or never created. Tombstones are
-- dropped after a day: by then no request can still hold the document.
CREATE TABLE known_documents (
    document_id uuid PRIMARY KEY,
    deleted_at  timestamptz          -- NULL while the document exists
);
CREATE INDEX known_documents_deleted_idx ON known_documents (deleted_at)
    WHERE deleted_at IS NOT NULL;
