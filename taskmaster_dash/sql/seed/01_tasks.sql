-- Demo tasks :lo..:hi of :n_tasks over the last :days days. Ids are md5('task' || n) so later
-- steps can point at task n without a lookup. Older tasks are mostly done; recent ones open.
INSERT INTO tasks (id, title, description, type, status, priority, complexity_score,
                   affected_files, requirements, acceptance_criteria, parent_task_id,
                   assigned_to, tags, estimated_hours, actual_hours, created_at, updated_at,
                   completed_at, metadata)
SELECT md5('task' || g)::uuid,
       initcap(verb) || ' ' || noun || ' (#' || g || ')',
       'Generated demo task ' || g || ': ' || verb || ' the ' || noun || '.',
       kind, status, priority, complexity,
       jsonb_build_array('src/' || noun_slug || '.py', 'tests/test_' || noun_slug || '.py'),
       jsonb_build_array('The ' || noun || ' works as described'),
       jsonb_build_array('Tests pass', 'Reviewed'),
       CASE WHEN g > 10 AND g % 5 = 0 THEN md5('task' || (g - 1 - (g % 7)))::uuid END,
       assignee, tags, estimate,
       CASE WHEN status = 'completed' THEN round((estimate * (0.5 + random()))::numeric, 2) END,
       created, COALESCE(completed, created), completed,
       jsonb_build_object('source', 'demo')
FROM (
    SELECT g, created, kind, verb, noun, noun_slug, priority, complexity, assignee, tags, estimate,
           status,
           CASE WHEN status IN ('completed', 'failed', 'cancelled')
                THEN created + random() * LEAST(interval '70 hours', now() - created) END AS completed
    FROM (
        SELECT g, created,
               (ARRAY['feature', 'bugfix', 'refactor', 'test', 'docs', 'deployment', 'general'])
                   [1 + g % 7] AS kind,
               (ARRAY['implement', 'fix', 'refactor', 'document', 'test', 'deploy', 'review'])
                   [1 + (g * 3) % 7] AS verb,
               (ARRAY['login flow', 'task API', 'validation runner', 'error tracker', 'webhook',
                      'billing export', 'search index', 'rate limiter', 'cache layer', 'CLI'])
                   [1 + (g * 11) % 10] AS noun,
               (ARRAY['login_flow', 'task_api', 'validation_runner', 'error_tracker', 'webhook',
                      'billing_export', 'search_index', 'rate_limiter', 'cache_layer', 'cli'])
                   [1 + (g * 11) % 10] AS noun_slug,
               least(10, floor(random() * random() * 11))::int AS priority,
               1 + floor(random() * 10)::int AS complexity,
               CASE WHEN random() < 0.15 THEN NULL ELSE
                   (ARRAY['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'developer'])
                   [1 + floor(random() * 8)::int] END AS assignee,
               jsonb_build_array(
                   (ARRAY['backend', 'frontend', 'api', 'db', 'infra', 'security', 'ci', 'ux'])
                   [1 + g % 8]) AS tags,
               round((1 + random() * 15)::numeric, 2) AS estimate,
               CASE
                   WHEN age < 2 THEN CASE WHEN r < 0.45 THEN 'pending' WHEN r < 0.75 THEN 'in_progress'
                                          WHEN r < 0.95 THEN 'completed' ELSE 'failed' END
                   WHEN age < 7 THEN CASE WHEN r < 0.12 THEN 'pending' WHEN r < 0.22 THEN 'in_progress'
                                          WHEN r < 0.92 THEN 'completed' WHEN r < 0.97 THEN 'failed'
                                          ELSE 'cancelled' END
                   ELSE CASE WHEN r < 0.02 THEN 'pending' WHEN r < 0.03 THEN 'in_progress'
                             WHEN r < 0.91 THEN 'completed' WHEN r < 0.97 THEN 'failed'
                             ELSE 'cancelled' END
               END AS status
        FROM (
            SELECT g, random() AS r,
                   now() - (CAST(:n_tasks - g AS float) / :n_tasks) * make_interval(days => :days)
                         - random() * interval '30 minutes' AS created,
                   (CAST(:n_tasks - g AS float) / :n_tasks) * :days AS age
            FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
        ) base
    ) shaped
) final;
