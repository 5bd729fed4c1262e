-- 096: the triage list's count without reading the table (issue 16).
--
-- The count of /errors (at most 10,001 rows of the window: last_occurred_at >= since AND
-- first_occurred_at <= until) walked the last_occurred_at indexes and then read every row's
-- heap page for first_occurred_at: ~8,800 pages for one count of a day at 500k errors. With
-- first_occurred_at in the index the same count is an index-only scan. The indexes are the
-- same otherwise (same keys, same predicate), so every plan that used them still can.
DROP INDEX IF EXISTS idx_error_logs_open_last;
CREATE INDEX idx_error_logs_open_last
    ON error_logs (last_occurred_at DESC, id DESC) INCLUDE (first_occurred_at)
    WHERE resolution_status IN ('unresolved', 'investigating');

DROP INDEX IF EXISTS idx_error_logs_last_occurred;
CREATE INDEX idx_error_logs_last_occurred
    ON error_logs (last_occurred_at DESC) INCLUDE (first_occurred_at);
