-- 022: faster task panels at a million tasks.
--
-- 1. The hourly task rollup also holds its totals without type and/or assignee (column `level`
--    = GROUPING(type, assignee): 0 full detail, 1 without assignee, 2 without type, 3 neither),
--    so an unfiltered chart reads ~5 rows an hour instead of ~300.
-- 2. analytics_open_tasks: the open backlog now, counted by age, priority, complexity, type,
--    assignee, tag, child tasks and dependencies (as the spec's active_tasks view counts them),
--    rebuilt on every refresh (once a minute), so the breakdowns do not scan every open task.
-- Both are readable only by users who see every task, like the task rollup.

ALTER TABLE analytics_task_hourly ADD COLUMN level SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE analytics_task_hourly ADD COLUMN refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE analytics_task_hourly DROP CONSTRAINT analytics_task_hourly_pkey;
ALTER TABLE analytics_task_hourly ADD PRIMARY KEY (level, bucket, status, type, assignee);

CREATE TABLE analytics_open_tasks (
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    type TEXT NOT NULL,
    assignee TEXT NOT NULL,  -- '' when unassigned
    tasks INTEGER NOT NULL,
    PRIMARY KEY (dim, key, status, type, assignee)
);
ALTER TABLE analytics_open_tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY analytics_open_tasks_select ON analytics_open_tasks FOR SELECT USING (
    (SELECT user_has_permission('tasks:read')) AND (SELECT current_user_sees_all_tasks()));

-- The task totals for the given hours, from their full-detail rows.
CREATE FUNCTION analytics_task_levels(p_hours timestamptz[]) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    DELETE FROM analytics_task_hourly WHERE level > 0 AND bucket = ANY (p_hours);
    INSERT INTO analytics_task_hourly (bucket, status, type, assignee, created_n, closed_n,
                                       completed_n, estimated_sum, actual_sum, hours_n, level)
    SELECT bucket, status, CASE WHEN GROUPING(type) = 1 THEN '' ELSE type END,
           CASE WHEN GROUPING(assignee) = 1 THEN '' ELSE assignee END,
           sum(created_n), sum(closed_n), sum(completed_n), sum(estimated_sum), sum(actual_sum),
           sum(hours_n), GROUPING(type, assignee)
    FROM analytics_task_hourly
    WHERE level = 0 AND bucket = ANY (p_hours)
    GROUP BY GROUPING SETS ((bucket, status, type), (bucket, status, assignee), (bucket, status));
$$;

CREATE FUNCTION analytics_open_tasks_rebuild() RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    DELETE FROM analytics_open_tasks;  -- not TRUNCATE: readers keep the old rows meanwhile
    INSERT INTO analytics_open_tasks
    SELECT d.dim, d.key, t.status, t.type, COALESCE(t.assigned_to, ''), count(*)
    FROM tasks t
    LEFT JOIN (SELECT parent_task_id AS id, count(*) AS n FROM task_dependencies
               GROUP BY 1) children ON children.id = t.id
    LEFT JOIN (SELECT child_task_id AS id, count(*) AS n FROM task_dependencies
               GROUP BY 1) deps ON deps.id = t.id
    CROSS JOIN LATERAL (VALUES
        ('age', CASE WHEN now() - t.created_at < interval '1 day' THEN '< 1 day'
                     WHEN now() - t.created_at < interval '3 days' THEN '1-3 days'
                     WHEN now() - t.created_at < interval '7 days' THEN '3-7 days'
                     WHEN now() - t.created_at < interval '14 days' THEN '7-14 days'
                     WHEN now() - t.created_at < interval '30 days' THEN '14-30 days'
                     ELSE '> 30 days' END),
        ('priority', COALESCE(t.priority::text, '')),
        ('complexity', COALESCE(t.complexity_score::text, '')),
        ('type', t.type),
        ('assignee', COALESCE(t.assigned_to, '(unassigned)')),
        ('children', LEAST(COALESCE(children.n, 0), 5)::text),
        ('dependencies', LEAST(COALESCE(deps.n, 0), 5)::text),
        ('parent', (t.parent_task_id IS NOT NULL)::text)
    ) AS d(dim, key)
    WHERE t.status IN ('pending', 'in_progress')
    GROUP BY 1, 2, 3, 4, 5
    UNION ALL
    SELECT 'tag', tag, t.status, t.type, COALESCE(t.assigned_to, ''), count(*)
    FROM tasks t CROSS JOIN LATERAL jsonb_array_elements_text(t.tags) AS tag
    WHERE t.status IN ('pending', 'in_progress')
    GROUP BY 1, 2, 3, 4, 5;
$$;

CREATE OR REPLACE FUNCTION analytics_refresh(p_hours int DEFAULT 3)
RETURNS TABLE (rollup text, steps int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_complete timestamptz;
    v_hours timestamptz[];
BEGIN
    RETURN QUERY SELECT * FROM analytics_refresh_steps(p_hours);

    -- errors: whole hours over the 5-minute steps rewritten now (021)
    SELECT analytics_bin(interval '1 hour', covered_until) INTO v_complete
    FROM analytics_rollup_state WHERE analytics_rollup_state.rollup = 'errors';
    IF p_hours IS NULL THEN
        TRUNCATE analytics_error_hourly;
    END IF;
    v_hours := ARRAY(SELECT DISTINCT analytics_bin(interval '1 hour', bucket)
                     FROM analytics_error_5m WHERE refreshed_at = now());
    DELETE FROM analytics_error_hourly WHERE bucket = ANY (v_hours);
    INSERT INTO analytics_error_hourly
    SELECT h.b, r.error_code, r.error_category, r.error_severity, r.service_name,
           sum(r.created_n), sum(r.occurrences), sum(r.resolved_n), sum(r.resolve_seconds)
    FROM unnest(v_hours) AS h(b)
    JOIN analytics_error_5m r ON r.bucket >= h.b AND r.bucket < h.b + interval '1 hour'
    WHERE h.b + interval '1 hour' <= v_complete
    GROUP BY 1, 2, 3, 4, 5;
    rollup := 'errors (hourly)'; steps := cardinality(v_hours); RETURN NEXT;

    -- tasks: totals of the hours rewritten now, and the open backlog
    v_hours := ARRAY(SELECT DISTINCT bucket FROM analytics_task_hourly
                     WHERE level = 0 AND refreshed_at = now());
    PERFORM analytics_task_levels(v_hours);
    PERFORM analytics_open_tasks_rebuild();
    rollup := 'tasks (totals)'; steps := cardinality(v_hours); RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION analytics_task_levels(timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION analytics_open_tasks_rebuild() FROM PUBLIC;
REVOKE ALL ON FUNCTION analytics_refresh(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_refresh(int) TO taskmaster_app;

-- Existing rows get their totals now, and the open backlog its first snapshot.
SELECT analytics_task_levels(ARRAY(SELECT DISTINCT bucket FROM analytics_task_hourly));
SELECT analytics_open_tasks_rebuild();

CREATE FUNCTION analytics_reset_open_tasks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM analytics_open_tasks;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_tasks_analytics_reset_open AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset_open_tasks();
