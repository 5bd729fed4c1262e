-- Demo validation runs :lo..:hi, each on a task of the first :n_tasks, of every type.
-- Newer Claude Code versions score a little better; security and integration run longest.
INSERT INTO validation_results (task_id, validation_type, validation_status, validation_score,
                                validation_data, claude_code_version, validation_environment,
                                started_at, completed_at, execution_time_ms, error_message,
                                retry_count, created_at, updated_at)
SELECT task_id, vtype, status,
       CASE WHEN status <> 'skipped' THEN round(greatest(0, least(100,
           CASE status WHEN 'passed' THEN 80 + random() * 20 WHEN 'warning' THEN 55 + random() * 30
                       WHEN 'failed' THEN 15 + random() * 45 WHEN 'error' THEN random() * 20 END
           + version_bonus))::numeric, 2) END,
       jsonb_build_object('checks', 5 + g % 20), version,
       jsonb_build_object('runner', 'ci-' || (g % 4)), started,
       started + duration_ms * interval '1 millisecond', duration_ms,
       CASE WHEN status IN ('failed', 'error') THEN 'Validation ' || vtype || ' reported problems' END,
       CASE WHEN random() < 0.1 THEN 1 + floor(random() * 3)::int ELSE 0 END,
       started, started
FROM (
    SELECT g, t.id AS task_id,
           (ARRAY['syntax', 'security', 'performance', 'style', 'testing', 'integration',
                  'deployment', 'compliance', 'documentation'])[1 + g % 9] AS vtype,
           CASE WHEN r < 0.70 THEN 'passed' WHEN r < 0.82 THEN 'warning' WHEN r < 0.94 THEN 'failed'
                WHEN r < 0.97 THEN 'error' ELSE 'skipped' END AS status,
           t.created_at + random() * LEAST(interval '6 hours', now() - t.created_at) AS started,
           CASE WHEN t.created_at > now() - interval '10 days' THEN '1.0.35'
                WHEN t.created_at > now() - interval '20 days' THEN '1.0.33' ELSE '1.0.31' END AS version,
           CASE WHEN t.created_at > now() - interval '10 days' THEN 0 ELSE -5 END AS version_bonus,
           (200 + exp(random() * 7) * CASE WHEN g % 9 IN (1, 5) THEN 8 ELSE 1 END)::int AS duration_ms
    FROM (SELECT g, random() AS r FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g) s
    JOIN tasks t ON t.id = md5('task' || (1 + (CAST(g AS bigint) * 7919) % :n_tasks))::uuid
) v;
