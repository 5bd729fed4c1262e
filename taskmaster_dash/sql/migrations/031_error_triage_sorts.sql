-- 031: the triage list's other fast sorts: the noisiest first (occurrence count) and the most
-- severe first (newest first within a severity), for any status.

CREATE OR REPLACE FUNCTION error_severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3
                         WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END
$$;

CREATE INDEX IF NOT EXISTS idx_error_logs_count_id ON error_logs (occurrence_count DESC, id DESC);

CREATE INDEX IF NOT EXISTS idx_error_logs_severity_rank
    ON error_logs (error_severity_rank(error_severity) DESC, last_occurred_at DESC, id DESC);
