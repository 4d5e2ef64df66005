DROP TABLE IF EXISTS known_documents;
DROP TABLE IF EXISTS follow_cursors;
