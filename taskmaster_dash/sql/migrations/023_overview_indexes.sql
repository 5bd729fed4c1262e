-- 023: the Overview's "unresolved errors" card counts the open errors from a small partial index
-- (an index-only scan) instead of the whole status index.
CREATE INDEX idx_error_logs_open ON error_logs (resolution_status)
    WHERE resolution_status IN ('unresolved', 'investigating');
