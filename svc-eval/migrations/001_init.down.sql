DROP TABLE grade_cache;
DROP TABLE results;
DROP TABLE attempts;
