DROP FUNCTION IF EXISTS turn_begin(uuid, text, uuid, bigint, int, uuid, text);
DROP TABLE IF EXISTS turns;
DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS chats;
