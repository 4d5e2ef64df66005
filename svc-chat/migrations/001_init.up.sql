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

-- Admits a turn and stores the user's message in one round trip. Under a transaction-level
-- advisory lock on the owner (class 1667785076, "chat"), so that concurrent turns of one user,
-- on any replica, are counted one after the other: expired turns go, live ones are counted, and
-- only under the limit are the turn and the message inserted (the message only when the chat
-- exists). Each statement of a volatile function takes a new snapshot, so the count sees every
-- turn committed before the lock was granted. Returns the message's seq, -1 when the owner has
-- `lim` turns in progress, NULL when the chat does not exist (nothing is written then).
CREATE FUNCTION turn_begin(p_turn uuid, p_owner text, p_chat uuid, p_ttl_ms bigint, p_lim int,
                           p_msg uuid, p_content text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n   bigint;
    s   bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1667785076, hashtext(p_owner));
    DELETE FROM turns WHERE owner_id = p_owner AND expires_at < now();
    SELECT count(*) INTO n FROM turns WHERE owner_id = p_owner;
    IF n >= p_lim THEN
        RETURN -1;
    END IF;
    INSERT INTO messages (id, chat_id, role, content)
        SELECT p_msg, c.id, 'user', p_content FROM chats c WHERE c.id = p_chat
        RETURNING seq INTO s;
    IF s IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO turns (id, owner_id, chat_id, expires_at)
        VALUES (p_turn, p_owner, p_chat, now() + p_ttl_ms * interval '1 millisecond');
    RETURN s;
END
$$;
