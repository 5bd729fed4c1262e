-- 031: the triage list's other fast sorts over open errors: the noisiest first (occurrence
-- count) and the most severe first. Partial, like idx_error_logs_open_last, so they stay small.

CREATE OR REPLACE FUNCTION error_severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3
                         WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END
$$;

CREATE INDEX IF NOT EXISTS idx_error_logs_open_count
    ON error_logs (occurrence_count DESC, id DESC)
    WHERE resolution_status IN ('unresolved', 'investigating');

CREATE INDEX IF NOT EXISTS idx_error_logs_open_severity
    ON error_logs (error_severity_rank(error_severity) DESC, last_occurred_at DESC, id DESC)
    WHERE resolution_status IN ('unresolved', 'investigating');
