-- The original TaskMaster's views, under their names and columns, because teams' scripts and
-- dashboards query them by name. Re-applied whenever this file changes (data/migrations.py),
-- so this is the one definition of each. security_invoker: the caller's RLS applies through
-- them. Unlike the original, active_tasks counts with subqueries (its three LEFT JOINs
-- multiplied rows), and recent_activity finds the task whichever name the audit row uses.
--
-- Speed (bench/views.py): the per-task views count each task's rows over an index
-- (task_contexts.task_id, task_dependencies' unique (parent_task_id, ...) and child_task_id,
-- validation_results.task_id), so a read filtered by a task id or status, or with a LIMIT,
-- touches only the tasks it returns, and a whole read streams without sorting or hashing the
-- join of two whole tables. active_tasks' scalar subqueries are skipped when a query does not
-- select their column.

DROP VIEW IF EXISTS active_tasks, task_summary, recent_activity, validation_summary,
    error_summary, task_validation_status, recent_errors;

CREATE VIEW active_tasks WITH (security_invoker = true) AS
SELECT
    t.*,
    (SELECT count(*) FROM task_contexts tc WHERE tc.task_id = t.id) AS context_count,
    (SELECT count(*) FROM task_dependencies d WHERE d.parent_task_id = t.id) AS child_task_count,
    (SELECT count(*) FROM task_dependencies d WHERE d.child_task_id = t.id) AS dependency_count
FROM tasks t
WHERE t.status IN ('pending', 'in_progress');

CREATE VIEW task_summary WITH (security_invoker = true) AS
SELECT
    status,
    count(*) AS task_count,
    avg(complexity_score) AS avg_complexity,
    sum(estimated_hours) AS total_estimated_hours,
    sum(actual_hours) AS total_actual_hours
FROM tasks
GROUP BY status;

-- user_id is the acting user's name, as it was in the original's audit_logs.user_id.
CREATE VIEW recent_activity WITH (security_invoker = true) AS
SELECT
    al."timestamp",
    al.entity_type,
    al.entity_id,
    al.action,
    t.title AS task_title,
    al.username AS user_id
FROM audit_logs al
LEFT JOIN tasks t ON t.id = al.entity_id AND al.entity_type IN ('task', 'tasks')
ORDER BY al."timestamp" DESC
LIMIT 100;

CREATE VIEW validation_summary WITH (security_invoker = true) AS
SELECT
    validation_type,
    validation_status,
    count(*) AS total_validations,
    avg(validation_score) AS avg_score,
    avg(execution_time_ms) AS avg_execution_time_ms,
    count(*) FILTER (WHERE retry_count > 0) AS retried_validations,
    max(completed_at) AS last_validation
FROM validation_results
WHERE completed_at IS NOT NULL
GROUP BY validation_type, validation_status;

CREATE VIEW error_summary WITH (security_invoker = true) AS
SELECT
    error_category,
    error_severity,
    resolution_status,
    count(*) AS error_count,
    sum(occurrence_count) AS total_occurrences,
    min(first_occurred_at) AS first_seen,
    max(last_occurred_at) AS last_seen,
    count(*) FILTER (WHERE resolution_status = 'resolved') AS resolved_count
FROM error_logs
GROUP BY error_category, error_severity, resolution_status;

-- One aggregate per task (an aggregate without GROUP BY always gives one row: zeros and NULLs
-- for a task without validations), rather than a GROUP BY of the join of both whole tables.
CREATE VIEW task_validation_status WITH (security_invoker = true) AS
SELECT
    t.id AS task_id,
    t.title,
    t.status AS task_status,
    v.total_validations,
    v.passed_validations,
    v.failed_validations,
    v.warning_validations,
    v.avg_validation_score,
    v.last_validation_at
FROM tasks t
CROSS JOIN LATERAL (
    SELECT
        count(*) AS total_validations,
        count(*) FILTER (WHERE vr.validation_status = 'passed') AS passed_validations,
        count(*) FILTER (WHERE vr.validation_status = 'failed') AS failed_validations,
        count(*) FILTER (WHERE vr.validation_status = 'warning') AS warning_validations,
        avg(vr.validation_score) AS avg_validation_score,
        max(vr.completed_at) AS last_validation_at
    FROM validation_results vr
    WHERE vr.task_id = t.id
) v;

CREATE VIEW recent_errors WITH (security_invoker = true) AS
SELECT
    el.id,
    el.error_code,
    el.error_category,
    el.error_severity,
    el.error_message,
    el.resolution_status,
    el.last_occurred_at,
    el.occurrence_count,
    t.title AS task_title,
    vr.validation_type
FROM error_logs el
LEFT JOIN tasks t ON t.id = el.task_id
LEFT JOIN validation_results vr ON vr.id = el.validation_result_id
ORDER BY el.last_occurred_at DESC, el.id  -- the tie-break makes the 100 the same each time
LIMIT 100;

GRANT SELECT ON active_tasks, task_summary, recent_activity, validation_summary, error_summary,
    task_validation_status, recent_errors TO taskmaster_app;

-- The original's role lookup, for scripts that call it: the role of the app's current user, and
-- NULL (not 'viewer', as the original had it) for anyone else.
CREATE OR REPLACE FUNCTION get_current_user_role() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.role_name::text FROM users u JOIN user_roles r ON r.id = u.role_id
    WHERE u.id = current_app_user_id() AND u.is_active AND r.is_active
$$;
