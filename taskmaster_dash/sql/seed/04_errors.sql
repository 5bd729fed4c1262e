-- Demo errors :lo..:hi over the last :days days: a steady trickle plus bursts (one error code
-- storming for 20 minutes), repeats counted in occurrence_count, older ones mostly resolved.
WITH catalogue(n, code, category, severity, service, message) AS (VALUES
    (0, 'DB_CONN_TIMEOUT', 'database', 'critical', 'task-api', 'Connection to the write pool timed out after 30s'),
    (1, 'DB_DEADLOCK', 'database', 'high', 'task-api', 'Deadlock detected while updating task status'),
    (2, 'VAL_SCHEMA', 'validation', 'medium', 'validator', 'Validation payload did not match the schema'),
    (3, 'VAL_TIMEOUT', 'validation', 'high', 'validator', 'Security scan exceeded its time budget'),
    (4, 'WF_STEP_FAILED', 'workflow', 'medium', 'orchestrator', 'Workflow step "deploy" failed'),
    (5, 'WF_RETRY_EXHAUSTED', 'workflow', 'high', 'orchestrator', 'Retries exhausted for workflow step'),
    (6, 'INT_GITHUB_5XX', 'integration', 'medium', 'github-sync', 'GitHub API answered 502 Bad Gateway'),
    (7, 'INT_WEBHOOK', 'integration', 'low', 'webhooks', 'Webhook receiver answered 410 Gone'),
    (8, 'AUTH_BAD_TOKEN', 'authentication', 'low', 'task-api', 'Rejected an expired bearer token'),
    (9, 'AUTH_LOCKED', 'authentication', 'info', 'task-api', 'Account locked after repeated failed sign-ins'),
    (10, 'AUTHZ_DENIED', 'authorization', 'medium', 'task-api', 'Permission tasks:write denied for api_client'),
    (11, 'NET_DNS', 'network', 'high', 'github-sync', 'DNS lookup failed for api.github.com'),
    (12, 'NET_RESET', 'network', 'medium', 'task-api', 'Connection reset by peer'),
    (13, 'CFG_MISSING', 'configuration', 'critical', 'orchestrator', 'Required setting CLAUDE_CODE_PATH is missing'),
    (14, 'BIZ_DUP_TASK', 'business_logic', 'low', 'task-api', 'Duplicate task title within the same parent'),
    (15, 'BIZ_INVALID_STATE', 'business_logic', 'medium', 'task-api', 'Cannot complete a task that is cancelled'),
    (16, 'SYS_OOM', 'system', 'critical', 'validator', 'Worker killed: out of memory'),
    (17, 'SYS_DISK', 'system', 'high', 'orchestrator', 'Disk usage above 90% on /var/lib/taskmaster')
), generated AS (
    SELECT g,
           -- every 40th row belongs to one of 8 bursts; the rest spread over the period
           CASE WHEN g % 40 = 0
                THEN now() - ((g / 40) % 8 + 0.5) * make_interval(days => :days) / 8
                     - random() * interval '20 minutes'
                ELSE now() - random() * make_interval(days => :days) END AS occurred,
           CASE WHEN g % 40 = 0 THEN (g / 40) % 8 * 2 ELSE floor(random() * random() * 18)::int END AS n,
           random() AS r, random() AS r2
    FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
)
INSERT INTO error_logs (task_id, workflow_state_id, error_code, error_category, error_severity,
                        error_message, error_details, stack_trace, context_data,
                        resolution_status, resolution_notes, resolved_at, resolved_by,
                        occurrence_count, first_occurred_at, last_occurred_at, user_id, session_id,
                        ip_address, user_agent, environment, service_name, service_version,
                        created_at, updated_at)
SELECT CASE WHEN g % 5 < 3 THEN md5('task' || (1 + (CAST(g AS bigint) * 104729) % :n_tasks))::uuid END,
       CASE WHEN g % 10 = 4 THEN md5('workflow' || (2 * (1 + (g * 7) % (:n_tasks / 2))))::uuid END,
       c.code, c.category, c.severity, c.message,
       jsonb_build_object('attempt', 1 + g % 3, 'pool', (ARRAY['read', 'write', 'analytics'])[1 + g % 3]),
       'Traceback (most recent call last):' || chr(10) ||
       '  File "/srv/' || c.service || '/handlers.py", line ' || (40 + g % 300) || ', in handle' || chr(10) ||
       '    result = run_step(task)' || chr(10) ||
       '  File "/srv/' || c.service || '/steps.py", line ' || (10 + g % 90) || ', in run_step' || chr(10) ||
       '    raise ' || initcap(replace(lower(c.code), '_', '')) || 'Error(' || quote_literal(c.message) || ')',
       jsonb_build_object('request_id', 'req_' || g, 'region', (ARRAY['eu-west-1', 'us-east-1'])[1 + g % 2]),
       status,
       CASE status WHEN 'resolved' THEN 'Fixed by redeploying ' || c.service
                   WHEN 'wont_fix' THEN 'Expected during maintenance window'
                   WHEN 'duplicate' THEN 'Same root cause as an earlier ' || c.code END,
       CASE WHEN status IN ('resolved', 'wont_fix', 'duplicate')
            THEN occurred + random() * LEAST(interval '30 hours', now() - occurred) END,
       CASE WHEN status IN ('resolved', 'wont_fix', 'duplicate')
            THEN (ARRAY['oncall', 'alice', 'bob'])[1 + g % 3] END,
       1 + floor(power(r2, 4) * 60)::int,
       occurred - power(r2, 3) * interval '2 days', occurred,
       'user-' || (g % 50), 'sess-' || (g % 500),
       ('10.0.' || (g % 250) || '.' || (1 + g % 200))::inet,
       'taskmaster-client/1.' || (g % 5),
       CASE WHEN r < 0.80 THEN 'production' WHEN r < 0.92 THEN 'staging'
            WHEN r < 0.97 THEN 'testing' ELSE 'development' END,
       c.service, '2.' || (g % 4) || '.' || (g % 10),
       occurred, occurred
FROM (
    SELECT gen.*,
           CASE WHEN gen.occurred < now() - interval '2 days' THEN
                CASE WHEN gen.r2 < 0.72 THEN 'resolved' WHEN gen.r2 < 0.78 THEN 'wont_fix'
                     WHEN gen.r2 < 0.81 THEN 'duplicate' WHEN gen.r2 < 0.85 THEN 'investigating'
                     ELSE 'unresolved' END
                ELSE CASE WHEN gen.r2 < 0.2 THEN 'resolved' WHEN gen.r2 < 0.3 THEN 'investigating'
                          ELSE 'unresolved' END END AS status
    FROM generated gen
) e
JOIN catalogue c ON c.n = e.n;
