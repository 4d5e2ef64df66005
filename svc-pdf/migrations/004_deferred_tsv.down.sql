DROP INDEX IF EXISTS chunks_unindexed_idx;
ALTER TABLE chunks DROP COLUMN tsv; -- takes chunks_tsv_idx with it
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
