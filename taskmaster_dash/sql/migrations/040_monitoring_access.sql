-- 040: what the Pools page (/pools) needs to read from PostgreSQL's statistics views.
--
-- The app role is neither superuser nor owner, so pg_stat_activity hides the query text of
-- other roles' sessions ("<insufficient privilege>") and pg_stat_statements shows only its own
-- statements. pg_read_all_stats (a built-in role, read-only) lifts that. Granting it needs a
-- superuser or a role with ADMIN on pg_read_all_stats; when the migrating login has neither, the
-- migration goes on and the page says what is hidden and how to grant it.
DO $$
BEGIN
    GRANT pg_read_all_stats TO taskmaster_app;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_read_all_stats not granted to taskmaster_app (needs a superuser): %', SQLERRM;
END
$$;

-- Slow queries come from pg_stat_statements. Creating the extension is harmless when it is not
-- preloaded (the page then says to add it to shared_preload_libraries); skipped when the
-- server does not ship it or the migrating login may not create it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_stat_statements not created: %', SQLERRM;
END
$$;
