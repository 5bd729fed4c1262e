-- 032: the triage search, able to use the trigram index.
--
-- Under RLS PostgreSQL cannot use an index for ILIKE (the operator is not leakproof, so it may
-- not run before the policy), and every search scanned the whole table. This function runs the
-- search as the owner, after checking the caller may read errors (the error_logs policy asks
-- nothing else), and returns at most max_rows ids: the app then filters by id when a search is
-- narrow, and scans in time order (where matches are dense) when it is broad.
CREATE OR REPLACE FUNCTION error_ids_matching(pattern text, max_rows integer) RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN user_has_permission('errors:read') THEN ARRAY(
        SELECT id FROM error_logs
        WHERE (error_code || ' ' || error_message) ILIKE pattern ESCAPE '\'
        LIMIT max_rows)
    ELSE ARRAY[]::uuid[] END
$$;
REVOKE ALL ON FUNCTION error_ids_matching(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION error_ids_matching(text, integer) TO taskmaster_app;
