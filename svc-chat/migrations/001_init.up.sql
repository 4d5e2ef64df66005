-- svc-chat schema "chat" (the connection's search_path). A chat belongs to one user and one
-- document (svc-pdf's id; no foreign key across schemas); its messages are stored once each,
-- the assistant's when its answer is finished.
CREATE TABLE chats (
    id          uuid PRIMARY KEY,
    owner_id    text NOT NULL,
    document_id uuid NOT NULL,
    pages       integer NOT NULL CHECK (pages >= 0), -- the document's pages: citations must exist
    legacy      boolean NOT NULL DEFAULT false,      -- the legacy routes' chat of (user, document)
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX chats_legacy_idx ON chats (owner_id, document_id) WHERE legacy;
CREATE INDEX chats_owner_idx ON chats (owner_id, created_at DESC);
CREATE INDEX chats_document_idx ON chats (document_id);

CREATE TABLE messages (
    seq        bigserial PRIMARY KEY,                -- order within a chat, and the list cursor
    id         uuid NOT NULL UNIQUE,
    chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('user', 'assistant')),
    content    text NOT NULL,
    citations  integer[] NOT NULL DEFAULT '{}',      -- pages of the document the answer cites
    status     text NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'incomplete')),
    error      text NOT NULL DEFAULT '',             -- with 'incomplete': why
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX messages_chat_idx ON messages (chat_id, seq);

-- Answers being written now, one row each: the per-user limit on turns in progress, shared by
-- every replica. A row whose replica died is ignored after expires_at.
CREATE TABLE turns (
    id         uuid PRIMARY KEY,
    owner_id   text NOT NULL,
    chat_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX turns_owner_idx ON turns (owner_id);
