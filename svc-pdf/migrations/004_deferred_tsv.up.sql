-- The chunks' full-text vectors are computed after the upload has answered (svc-pdf/indexer.c),
-- not inside it: to_tsvector over a long document's text was most of the upload's time after
-- extraction. A chunk without one yet (tsv IS NULL) is searched by computing it on the fly
-- (store.c), so a document is searchable the moment its upload commits; the partial index finds
-- the chunks still to do.
ALTER TABLE chunks ALTER COLUMN tsv DROP EXPRESSION;
CREATE INDEX chunks_unindexed_idx ON chunks (sha256) WHERE tsv IS NULL;
