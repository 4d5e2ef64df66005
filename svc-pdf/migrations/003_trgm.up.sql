-- Trigram similarity (pg_trgm) for pdf.Search's last fallback: a question whose words appear in
-- no chunk, not even as prefixes (misspellings: "photosintesis"), still finds the chunks with
-- similar words. The extension ships with Debian's postgresql-15 and the postgres images, and is
-- trusted (a database owner may create it). It lives in schema public so that every service's
-- search_path-free call (public.word_similarity) finds it. Where it cannot be created (not
-- installed, no privilege) the migration still succeeds: that fallback then finds nothing
-- (store.c notices the missing function) and the other searches work as before.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN others THEN
    RAISE WARNING 'pg_trgm not available (%): pdf.Search runs without its trigram fallback', SQLERRM;
END
$$;
