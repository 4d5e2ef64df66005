-- svc-pdf schema "pdf" (the connection's search_path). Content-addressed blobs hold what was
-- extracted from a file once; documents are the owners' references to blobs.
CREATE TABLE blobs (
    sha256            text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes        bigint NOT NULL CHECK (size_bytes > 0),
    pages             integer NOT NULL CHECK (pages > 0),
    title             text,          -- NULL when the PDF does not say
    author            text,
    subject           text,
    creator           text,
    producer          text,
    creation_date     text,          -- as written in the PDF (D:YYYYMMDD...)
    modification_date text,
    text_length       bigint NOT NULL, -- Unicode characters over all pages
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pages (
    sha256 text NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    page   integer NOT NULL CHECK (page > 0),
    text   text NOT NULL,
    PRIMARY KEY (sha256, page)
);

CREATE TABLE chunks (
    sha256     text NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    idx        integer NOT NULL CHECK (idx >= 0),
    page_first integer NOT NULL,
    page_last  integer NOT NULL,
    text       text NOT NULL,
    tsv        tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    PRIMARY KEY (sha256, idx)
);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);

CREATE TABLE documents (
    id         uuid PRIMARY KEY,
    owner_id   text NOT NULL,
    sha256     text NOT NULL REFERENCES blobs (sha256),
    filename   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (owner_id, sha256)
);
CREATE INDEX documents_owner_created_idx ON documents (owner_id, created_at DESC, id DESC);
CREATE INDEX documents_owner_filename_idx ON documents (owner_id, filename);
CREATE INDEX documents_sha256_idx ON documents (sha256);

CREATE TABLE selection (
    owner_id    text PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    selected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX selection_document_idx ON selection (document_id);
