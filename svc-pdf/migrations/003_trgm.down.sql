-- The extension belongs to the database, not to schema pdf, and other schemas may use it: it
-- stays.
SELECT 1;
