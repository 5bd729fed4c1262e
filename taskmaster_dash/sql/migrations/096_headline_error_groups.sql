-- 096: the error counts kept by trigger (095) also by category and service (issue 15).
--
-- The rule preview of open_errors (data/alert_metric_history.py) walks back from the errors open
-- now, per group of severity, category or service. Counting them from error_logs reads nearly
-- every page of the table (the open errors are spread over all of it): ~0.5 s at medium scale,
-- growing with the table. Kept here they are a few hundred rows whatever the table's size; the
-- Overview's sums over severity and status read the same rows as before, only more of them.
--
-- The trigger function and the compaction are 095's with the two columns added to the key. The
-- counts are rebuilt with writers of error_logs kept out until this commits, so no change falls
-- between the count and the new key. That lock comes first: a writer already past it finishes
-- (its trigger writing the counts) before this touches them, instead of deadlocking with it.

LOCK TABLE error_logs IN SHARE MODE;
ALTER TABLE headline_error_counts ADD COLUMN category TEXT, ADD COLUMN service TEXT;

CREATE OR REPLACE FUNCTION headline_errors_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    key text := 'error_severity, resolution_status, regressed_at IS NOT NULL, error_category,
                 service_name';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM headline_counts_lock();
        DELETE FROM headline_error_counts;
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO headline_error_counts (severity, status, regressed, category, service, n)
         SELECT c.severity, c.status, c.regressed, c.category, c.service, sum(c.d)
         FROM (%s) AS c (severity, status, regressed, category, service, d)
         GROUP BY 1, 2, 3, 4, 5 HAVING sum(c.d) <> 0',
        CASE TG_OP
            WHEN 'INSERT' THEN format('SELECT %s, 1 FROM new_rows', key)
            WHEN 'DELETE' THEN format('SELECT %s, -1 FROM old_rows', key)
            ELSE format('SELECT %1$s, 1 FROM new_rows UNION ALL SELECT %1$s, -1 FROM old_rows',
                        key) END);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION headline_counts_compact() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM headline_counts_lock();
    WITH gone AS (DELETE FROM headline_task_counts RETURNING level, status, assignee, n)
    INSERT INTO headline_task_counts (level, status, assignee, n)
    SELECT level, status, assignee, sum(n) FROM gone GROUP BY 1, 2, 3 HAVING sum(n) <> 0;
    WITH gone AS (DELETE FROM headline_error_counts
                  RETURNING severity, status, regressed, category, service, n)
    INSERT INTO headline_error_counts (severity, status, regressed, category, service, n)
    SELECT severity, status, regressed, category, service, sum(n) FROM gone
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
END
$$;

SELECT headline_counts_lock();  -- a compaction running meanwhile takes turns with this
DELETE FROM headline_error_counts;
INSERT INTO headline_error_counts (severity, status, regressed, category, service, n)
SELECT error_severity, resolution_status, regressed_at IS NOT NULL, error_category, service_name,
       count(*)
FROM error_logs GROUP BY 1, 2, 3, 4, 5;
