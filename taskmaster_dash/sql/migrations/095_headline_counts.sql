-- 095: the Overview's headline counts kept by triggers instead of counted per request (issue 16).
--
-- headline_task_counts holds tasks by status (level 1: all assignees; level 0: per assignee,
-- NULL = unassigned) and headline_error_counts errors by severity, resolution status,
-- regressed (regressed_at set), category and service (the rule preview's open errors per group,
-- data/alert_metric_history.py). Statement-level triggers with transition tables on tasks and
-- error_logs append one delta row per key a statement changed (INSERT, UPDATE, DELETE; a
-- TRUNCATE empties the counts), so concurrent writers never wait for each other on a counter
-- row (and cannot deadlock on one). A reader sums the rows of a key; headline_counts_compact()
-- (run by the rollup refresher every minute) folds them into one row per key in one
-- transaction, so a reader sees either the deltas or their sum, never both or neither.
--
-- The triggers fire ALWAYS, also with session_replication_role = replica: the seed and
-- group-errors load and fold rows that way, and the counts must follow them too.
--
-- Security: the counts are ordinary tables with RLS, written only by the triggers (SECURITY
-- DEFINER). Error counts need errors:read (error_logs shows every row to it). Task totals over
-- all assignees (level 1) are readable only by users who see every task; the per-assignee rows
-- exactly as tasks_select (002) shows tasks, so a developer's sum is their RLS-filtered count.

CREATE TABLE headline_task_counts (
    level SMALLINT NOT NULL CHECK (level IN (0, 1)),
    status TEXT NOT NULL,
    assignee TEXT,  -- level 0: tasks.assigned_to (NULL: unassigned); level 1: NULL
    n BIGINT NOT NULL
);
CREATE INDEX idx_headline_task_counts ON headline_task_counts (level, assignee);

CREATE TABLE headline_error_counts (
    severity TEXT NOT NULL,
    status TEXT,  -- error_logs.resolution_status (nullable there)
    regressed BOOLEAN NOT NULL,
    category TEXT,
    service TEXT,
    n BIGINT NOT NULL
);

ALTER TABLE headline_task_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE headline_error_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY headline_task_counts_select ON headline_task_counts FOR SELECT USING (
    (SELECT user_has_permission('tasks:read'))
    AND ((SELECT current_user_sees_all_tasks())
         OR (level = 0 AND (assignee IS NULL
                            OR assignee IN (SELECT unnest(current_app_user_names()))))));
CREATE POLICY headline_error_counts_select ON headline_error_counts FOR SELECT
    USING ((SELECT user_has_permission('errors:read')));
-- Only the triggers write (002 grants every new table's writes to the app by default).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON headline_task_counts, headline_error_counts
    FROM taskmaster_app;

-- A TRUNCATE's reset and a compaction take turns (otherwise a compaction committing meanwhile
-- could put back the sums of rows the TRUNCATE removed).
CREATE FUNCTION headline_counts_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7310095) $$;

CREATE FUNCTION headline_tasks_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM headline_counts_lock();
        DELETE FROM headline_task_counts;
        RETURN NULL;
    END IF;
    -- the changed rows as (status, assignee, +1 / -1), from the statement's transition tables
    EXECUTE format(
        'INSERT INTO headline_task_counts (level, status, assignee, n)
         SELECT l.level, c.status, CASE WHEN l.level = 0 THEN c.assignee END, sum(c.d)
         FROM (%s) AS c (status, assignee, d) CROSS JOIN (VALUES (0), (1)) AS l (level)
         GROUP BY 1, 2, 3 HAVING sum(c.d) <> 0',
        CASE TG_OP
            WHEN 'INSERT' THEN 'SELECT status, assigned_to, 1 FROM new_rows'
            WHEN 'DELETE' THEN 'SELECT status, assigned_to, -1 FROM old_rows'
            ELSE 'SELECT status, assigned_to, 1 FROM new_rows
                  UNION ALL SELECT status, assigned_to, -1 FROM old_rows' END);
    RETURN NULL;
END
$$;

CREATE FUNCTION headline_errors_count() RETURNS trigger
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

-- A trigger with transition tables takes one event, so three per table, and one for TRUNCATE.
DO $$
DECLARE
    t text;
    f text;
BEGIN
    FOR t, f IN VALUES ('tasks', 'headline_tasks_count'), ('error_logs', 'headline_errors_count')
    LOOP
        EXECUTE format('CREATE TRIGGER trg_%1$s_headline_insert AFTER INSERT ON %1$I
                        REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %2$I()', t, f);
        EXECUTE format('CREATE TRIGGER trg_%1$s_headline_update AFTER UPDATE ON %1$I
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %2$I()', t, f);
        EXECUTE format('CREATE TRIGGER trg_%1$s_headline_delete AFTER DELETE ON %1$I
                        REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %2$I()', t, f);
        EXECUTE format('CREATE TRIGGER trg_%1$s_headline_truncate AFTER TRUNCATE ON %1$I
                        FOR EACH STATEMENT EXECUTE FUNCTION %2$I()', t, f);
        EXECUTE format('ALTER TABLE %1$I ENABLE ALWAYS TRIGGER trg_%1$s_headline_insert,
                        ENABLE ALWAYS TRIGGER trg_%1$s_headline_update,
                        ENABLE ALWAYS TRIGGER trg_%1$s_headline_delete,
                        ENABLE ALWAYS TRIGGER trg_%1$s_headline_truncate', t);
    END LOOP;
END
$$;

-- Fold the delta rows into one row per key (keys that sum to zero disappear). Rows committed
-- while it runs are not in its snapshot: they stay, and the next compaction folds them.
CREATE FUNCTION headline_counts_compact() RETURNS void
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

REVOKE ALL ON FUNCTION headline_tasks_count() FROM PUBLIC;
REVOKE ALL ON FUNCTION headline_errors_count() FROM PUBLIC;
REVOKE ALL ON FUNCTION headline_counts_lock() FROM PUBLIC;
REVOKE ALL ON FUNCTION headline_counts_compact() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION headline_counts_compact() TO taskmaster_app;

-- The counts of the rows already there. The triggers above already hold a lock that keeps
-- writers out until this migration commits, so no change falls between the count and them.
INSERT INTO headline_task_counts (level, status, assignee, n)
SELECT GROUPING(assigned_to), status, assigned_to, count(*) FROM tasks
GROUP BY GROUPING SETS ((status, assigned_to), (status));
INSERT INTO headline_error_counts (severity, status, regressed, category, service, n)
SELECT error_severity, resolution_status, regressed_at IS NOT NULL, error_category, service_name,
       count(*)
FROM error_logs GROUP BY 1, 2, 3, 4, 5;
