-- Contexts, dependencies and workflow states for demo tasks :lo..:hi.
INSERT INTO task_contexts (task_id, context_type, context_data, created_at, updated_at)
SELECT t.id,
       (ARRAY['requirement', 'codebase', 'ai_interaction', 'validation', 'workflow',
              'status_change'])[1 + (g + k) % 6],
       jsonb_build_object('note', 'demo context ' || k), t.created_at, t.created_at
FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
JOIN tasks t ON t.id = md5('task' || g)::uuid
CROSS JOIN generate_series(1, 1 + g % 2) AS k;

INSERT INTO task_dependencies (parent_task_id, child_task_id, dependency_type, created_at)
SELECT md5('task' || (g - 1 - g % 13))::uuid, md5('task' || g)::uuid,
       (ARRAY['blocks', 'depends_on', 'related'])[1 + g % 3], now()
FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
WHERE g > 20 AND g % 10 = 3
ON CONFLICT DO NOTHING;

INSERT INTO workflow_states (id, workflow_id, task_id, step, status, result, started_at,
                             completed_at, error_message, retry_count, created_at, updated_at)
SELECT md5('workflow' || g)::uuid, 'wf-' || (g / 3), t.id,
       (ARRAY['plan', 'implement', 'validate', 'review', 'deploy'])[1 + g % 5],
       CASE WHEN t.status = 'completed' THEN 'completed' WHEN t.status = 'failed' THEN 'failed'
            WHEN t.status = 'in_progress' THEN 'running' WHEN t.status = 'cancelled' THEN 'skipped'
            ELSE 'pending' END,
       jsonb_build_object('step_ok', t.status <> 'failed'), t.created_at, t.completed_at,
       CASE WHEN t.status = 'failed' THEN 'Step failed: see error log' END,
       CASE WHEN t.status = 'failed' THEN 1 + g % 3 ELSE 0 END, t.created_at, t.created_at
FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
JOIN tasks t ON t.id = md5('task' || g)::uuid
WHERE g % 2 = 0;
