-- 030: indexes for the error triage list (/errors) and its detail.

-- The default view: open errors (unresolved or investigating), newest first. A partial index
-- keeps it small at millions of rows and gives the order without a sort.
CREATE INDEX IF NOT EXISTS idx_error_logs_open_last
    ON error_logs (last_occurred_at DESC, id DESC)
    WHERE resolution_status IN ('unresolved', 'investigating');

-- "Other errors with the same code", newest first.
CREATE INDEX IF NOT EXISTS idx_error_logs_code_last ON error_logs (error_code, last_occurred_at DESC);

-- Text search over code and message (ILIKE '%...%'): a trigram index when pg_trgm can be
-- installed (used through error_ids_matching, migration 032). Without it the search still
-- works, by scanning; nothing else depends on it.
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%); error search will not be indexed', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS idx_error_logs_search_trgm ON error_logs
                 USING gin ((error_code || '' '' || error_message) gin_trgm_ops)';
    END IF;
END
$$;
