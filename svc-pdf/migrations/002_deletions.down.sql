DROP TABLE IF EXISTS deletions_log;
DROP TABLE IF EXISTS deletions;
