-- 020: pre-aggregated analytics (issue 4).
--
-- Three rollup tables hold counts per time step (tasks: 1 hour; errors: 5 minutes; validations:
-- 1 hour). `analytics_refresh(hours)` recomputes the steps of the last `hours` hours, every step
-- since the previous refresh, and the steps touched by rows updated since then; with NULL (or
-- on first use) it rebuilds everything. Only complete steps are stored: `covered_until` says
-- where the rollup ends, and readers add the raw rows after it (data/analytics*.py), so charts
-- are current without waiting for a refresh.
--
-- Security: the rollups are ordinary tables with RLS. The task rollup is readable only by users
-- who may see every task (current_user_sees_all_tasks()), so a developer, who may see only their
-- own and unassigned tasks, never reads it; their charts come from the RLS-filtered tasks table.

CREATE TABLE analytics_rollup_state (
    rollup TEXT PRIMARY KEY,
    step INTERVAL NOT NULL,
    covered_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    refreshed_at TIMESTAMPTZ
);
INSERT INTO analytics_rollup_state (rollup, step) VALUES
    ('tasks', interval '1 hour'), ('errors', interval '5 minutes'),
    ('validations', interval '1 hour');

-- Tasks: per hour, tasks created (by current status, type, assignee) and tasks closed
-- (completed_at in the hour), with estimated and actual hours of the completed ones.
CREATE TABLE analytics_task_hourly (
    bucket TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    type TEXT NOT NULL,
    assignee TEXT NOT NULL,  -- '' when unassigned
    created_n INTEGER NOT NULL,
    closed_n INTEGER NOT NULL,
    completed_n INTEGER NOT NULL,
    estimated_sum NUMERIC NOT NULL,
    actual_sum NUMERIC NOT NULL,
    hours_n INTEGER NOT NULL,  -- completed tasks with both estimated and actual hours
    PRIMARY KEY (bucket, status, type, assignee)
);

-- Errors: per 5 minutes, rows created and occurrences, rows resolved (resolved_at in the step)
-- and their total time to resolve.
CREATE TABLE analytics_error_5m (
    bucket TIMESTAMPTZ NOT NULL,
    error_code TEXT NOT NULL,
    error_category TEXT NOT NULL,
    error_severity TEXT NOT NULL,
    service_name TEXT NOT NULL,  -- '' when unknown
    created_n INTEGER NOT NULL,
    occurrences BIGINT NOT NULL,
    resolved_n INTEGER NOT NULL,
    resolve_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, error_code, error_category, error_severity, service_name)
);

-- Validations: per hour, runs by type, status and Claude Code version.
CREATE TABLE analytics_validation_hourly (
    bucket TIMESTAMPTZ NOT NULL,
    validation_type TEXT NOT NULL,
    validation_status TEXT NOT NULL,
    version TEXT NOT NULL,  -- '' when unknown
    runs INTEGER NOT NULL,
    score_n INTEGER NOT NULL,
    score_sum NUMERIC NOT NULL,
    retried_n INTEGER NOT NULL,
    retries_sum INTEGER NOT NULL,
    PRIMARY KEY (bucket, validation_type, validation_status, version)
);

-- Validations: per hour and type, histograms of the score (kind 's', bucket = floor(score/10),
-- 0..9) and of the execution time (kind 'e', bucket = floor(8 * ln(ms)), about 13% wide).
CREATE TABLE analytics_validation_hist_hourly (
    bucket TIMESTAMPTZ NOT NULL,
    validation_type TEXT NOT NULL,
    kind CHAR(1) NOT NULL CHECK (kind IN ('s', 'e')),
    bin SMALLINT NOT NULL,
    runs INTEGER NOT NULL,
    PRIMARY KEY (bucket, validation_type, kind, bin)
);

ALTER TABLE analytics_rollup_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_task_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_error_5m ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_validation_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_validation_hist_hourly ENABLE ROW LEVEL SECURITY;

CREATE POLICY analytics_rollup_state_select ON analytics_rollup_state FOR SELECT USING (true);
CREATE POLICY analytics_task_hourly_select ON analytics_task_hourly FOR SELECT USING (
    (SELECT user_has_permission('tasks:read')) AND (SELECT current_user_sees_all_tasks()));
CREATE POLICY analytics_error_5m_select ON analytics_error_5m FOR SELECT
    USING ((SELECT user_has_permission('errors:read')));
CREATE POLICY analytics_validation_hourly_select ON analytics_validation_hourly FOR SELECT
    USING ((SELECT user_has_permission('validations:read')));
CREATE POLICY analytics_validation_hist_hourly_select ON analytics_validation_hist_hourly
    FOR SELECT USING ((SELECT user_has_permission('validations:read')));

-- Indexes the analytics queries and the incremental refresh need.
CREATE INDEX idx_error_logs_resolved_at ON error_logs(resolved_at);
CREATE INDEX idx_error_logs_updated_at ON error_logs(updated_at);
CREATE INDEX idx_validation_results_updated_at ON validation_results(updated_at);
CREATE INDEX idx_validation_results_score ON validation_results(validation_score, created_at)
    WHERE validation_score IS NOT NULL;
CREATE INDEX idx_tasks_open_created ON tasks(created_at)
    WHERE status IN ('pending', 'in_progress');

-- The step that holds `ts`, the same in every session time zone.
CREATE FUNCTION analytics_bin(step interval, ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin(step, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')
$$;

-- The steps to recompute: all of them (full), or the last `hours` hours, everything since the
-- rollup's end, and the steps of the given timestamps (rows updated since the last refresh).
CREATE FUNCTION analytics_dirty_steps(p_rollup text, p_hours int, p_first timestamptz,
                                      p_touched timestamptz[]) RETURNS timestamptz[]
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    s analytics_rollup_state%ROWTYPE;
    v_until timestamptz;
    v_from timestamptz;
BEGIN
    SELECT * INTO s FROM analytics_rollup_state WHERE rollup = p_rollup;
    v_until := analytics_bin(s.step, now());
    IF p_hours IS NULL OR s.refreshed_at IS NULL THEN
        v_from := analytics_bin(s.step, COALESCE(p_first, v_until));
    ELSE
        v_from := LEAST(analytics_bin(s.step, now() - make_interval(hours => p_hours)),
                        GREATEST(s.covered_until, analytics_bin(s.step, COALESCE(p_first, v_until))));
    END IF;
    RETURN ARRAY(
        SELECT DISTINCT b FROM (
            SELECT generate_series(v_from, v_until - s.step, s.step) AS b
            UNION ALL
            SELECT analytics_bin(s.step, t) FROM unnest(p_touched) AS t
            WHERE p_hours IS NOT NULL AND s.refreshed_at IS NOT NULL
        ) x
        WHERE b < v_until
    );
END
$$;

CREATE FUNCTION analytics_refresh(p_hours int DEFAULT 3) RETURNS TABLE (rollup text, steps int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_since timestamptz;
    v_steps timestamptz[];
    v_now timestamptz := now();
BEGIN
    -- one refresh at a time; readers keep seeing the previous rows until this commits
    PERFORM pg_advisory_xact_lock(7310020);

    -- tasks
    SELECT s.refreshed_at - interval '1 minute' INTO v_since
    FROM analytics_rollup_state s WHERE s.rollup = 'tasks';
    v_steps := analytics_dirty_steps('tasks', p_hours,
        (SELECT LEAST(min(created_at), min(completed_at)) FROM tasks),
        ARRAY(SELECT created_at FROM tasks WHERE updated_at >= v_since
              UNION SELECT completed_at FROM tasks
              WHERE updated_at >= v_since AND completed_at IS NOT NULL));
    IF p_hours IS NULL THEN
        TRUNCATE analytics_task_hourly;
    ELSE
        DELETE FROM analytics_task_hourly WHERE bucket = ANY (v_steps);
    END IF;
    INSERT INTO analytics_task_hourly
    SELECT b, status, type, assignee, sum(c), sum(cl), sum(cp), sum(est), sum(act), sum(hn)
    FROM (
        SELECT d.b, t.status, t.type, COALESCE(t.assigned_to, '') AS assignee,
               1 AS c, 0 AS cl, 0 AS cp, 0::numeric AS est, 0::numeric AS act, 0 AS hn
        FROM unnest(v_steps) AS d(b)
        JOIN tasks t ON t.created_at >= d.b AND t.created_at < d.b + interval '1 hour'
        UNION ALL
        SELECT d.b, t.status, t.type, COALESCE(t.assigned_to, ''), 0, 1,
               (t.status = 'completed')::int,
               CASE WHEN t.status = 'completed' AND t.actual_hours IS NOT NULL
                    THEN COALESCE(t.estimated_hours, 0) ELSE 0 END,
               CASE WHEN t.status = 'completed' AND t.estimated_hours IS NOT NULL
                    THEN COALESCE(t.actual_hours, 0) ELSE 0 END,
               (t.status = 'completed' AND t.estimated_hours IS NOT NULL
                AND t.actual_hours IS NOT NULL)::int
        FROM unnest(v_steps) AS d(b)
        JOIN tasks t ON t.completed_at >= d.b AND t.completed_at < d.b + interval '1 hour'
    ) x
    GROUP BY 1, 2, 3, 4;
    UPDATE analytics_rollup_state s SET covered_until = analytics_bin(s.step, v_now),
           refreshed_at = v_now WHERE s.rollup = 'tasks';
    rollup := 'tasks'; steps := cardinality(v_steps); RETURN NEXT;

    -- errors
    SELECT s.refreshed_at - interval '1 minute' INTO v_since
    FROM analytics_rollup_state s WHERE s.rollup = 'errors';
    v_steps := analytics_dirty_steps('errors', p_hours,
        (SELECT LEAST(min(created_at), min(resolved_at)) FROM error_logs),
        ARRAY(SELECT created_at FROM error_logs WHERE updated_at >= v_since
              UNION SELECT resolved_at FROM error_logs
              WHERE updated_at >= v_since AND resolved_at IS NOT NULL));
    IF p_hours IS NULL THEN
        TRUNCATE analytics_error_5m;
    ELSE
        DELETE FROM analytics_error_5m WHERE bucket = ANY (v_steps);
    END IF;
    INSERT INTO analytics_error_5m
    SELECT b, code, category, severity, service, sum(c), sum(occ), sum(r), sum(secs)
    FROM (
        SELECT d.b, e.error_code AS code, e.error_category AS category,
               e.error_severity AS severity, COALESCE(e.service_name, '') AS service,
               1 AS c, e.occurrence_count::bigint AS occ, 0 AS r, 0::float8 AS secs
        FROM unnest(v_steps) AS d(b)
        JOIN error_logs e ON e.created_at >= d.b AND e.created_at < d.b + interval '5 minutes'
        UNION ALL
        SELECT d.b, e.error_code, e.error_category, e.error_severity,
               COALESCE(e.service_name, ''), 0, 0, 1,
               GREATEST(0, extract(epoch FROM e.resolved_at - e.first_occurred_at))::float8
        FROM unnest(v_steps) AS d(b)
        JOIN error_logs e ON e.resolved_at >= d.b AND e.resolved_at < d.b + interval '5 minutes'
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    UPDATE analytics_rollup_state s SET covered_until = analytics_bin(s.step, v_now),
           refreshed_at = v_now WHERE s.rollup = 'errors';
    rollup := 'errors'; steps := cardinality(v_steps); RETURN NEXT;

    -- validations
    SELECT s.refreshed_at - interval '1 minute' INTO v_since
    FROM analytics_rollup_state s WHERE s.rollup = 'validations';
    v_steps := analytics_dirty_steps('validations', p_hours,
        (SELECT min(created_at) FROM validation_results),
        ARRAY(SELECT created_at FROM validation_results WHERE updated_at >= v_since));
    IF p_hours IS NULL THEN
        TRUNCATE analytics_validation_hourly, analytics_validation_hist_hourly;
    ELSE
        DELETE FROM analytics_validation_hourly WHERE bucket = ANY (v_steps);
        DELETE FROM analytics_validation_hist_hourly WHERE bucket = ANY (v_steps);
    END IF;
    INSERT INTO analytics_validation_hourly
    SELECT d.b, v.validation_type, v.validation_status, COALESCE(v.claude_code_version, ''),
           count(*), count(v.validation_score), COALESCE(sum(v.validation_score), 0),
           count(*) FILTER (WHERE v.retry_count > 0), COALESCE(sum(v.retry_count), 0)
    FROM unnest(v_steps) AS d(b)
    JOIN validation_results v ON v.created_at >= d.b AND v.created_at < d.b + interval '1 hour'
    GROUP BY 1, 2, 3, 4;
    INSERT INTO analytics_validation_hist_hourly
    SELECT b, validation_type, kind, bin, count(*)
    FROM (
        SELECT d.b, v.validation_type, 's' AS kind,
               LEAST(floor(v.validation_score / 10), 9)::smallint AS bin
        FROM unnest(v_steps) AS d(b)
        JOIN validation_results v ON v.created_at >= d.b AND v.created_at < d.b + interval '1 hour'
        WHERE v.validation_score IS NOT NULL
        UNION ALL
        SELECT d.b, v.validation_type, 'e',
               floor(8 * ln(GREATEST(v.execution_time_ms, 1)))::smallint
        FROM unnest(v_steps) AS d(b)
        JOIN validation_results v ON v.created_at >= d.b AND v.created_at < d.b + interval '1 hour'
        WHERE v.execution_time_ms IS NOT NULL
    ) x
    GROUP BY 1, 2, 3, 4;
    UPDATE analytics_rollup_state s SET covered_until = analytics_bin(s.step, v_now),
           refreshed_at = v_now WHERE s.rollup = 'validations';
    rollup := 'validations'; steps := cardinality(v_steps); RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION analytics_refresh(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_refresh(int) TO taskmaster_app;

-- A TRUNCATE of a source table (demo reseed, tests) empties its rollup and marks it for a
-- full rebuild; row deletes are caught by the next full refresh (`refresh-analytics --full`).
CREATE FUNCTION analytics_reset() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'tasks' THEN
        TRUNCATE analytics_task_hourly;
        UPDATE analytics_rollup_state SET covered_until = '-infinity', refreshed_at = NULL
        WHERE rollup = 'tasks';
    ELSIF TG_TABLE_NAME = 'error_logs' THEN
        TRUNCATE analytics_error_5m;
        UPDATE analytics_rollup_state SET covered_until = '-infinity', refreshed_at = NULL
        WHERE rollup = 'errors';
    ELSE
        TRUNCATE analytics_validation_hourly, analytics_validation_hist_hourly;
        UPDATE analytics_rollup_state SET covered_until = '-infinity', refreshed_at = NULL
        WHERE rollup = 'validations';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_tasks_analytics_reset AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset();
CREATE TRIGGER trg_error_logs_analytics_reset AFTER TRUNCATE ON error_logs
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset();
CREATE TRIGGER trg_validation_results_analytics_reset AFTER TRUNCATE ON validation_results
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset();
