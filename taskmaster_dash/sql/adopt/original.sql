-- Turns an original TaskMaster database (spec/original-schema.md) into the shape of our 001, in
-- place, keeping every row; data/adoption.py runs it, then creates 001's updated_at function and
-- triggers (taken from 001), replaces the CHECK constraints, adds 001's indexes and applies 002
-- and the later migrations, all in one transaction.

-- Its views read columns that change below; sql/repeatable/original_views.sql recreates them.
DROP VIEW IF EXISTS active_tasks, task_summary, recent_activity, validation_summary,
    error_summary, task_validation_status, recent_errors;

-- Its policies (one of which never applied), its audit trigger (which wrote entity types its own
-- CHECK refused) and its role functions ("an unknown user is a viewer") give way to 002's.
DO $$
DECLARE
    p record;
    t text;
BEGIN
    FOR p IN SELECT policyname, tablename FROM pg_policies
             WHERE schemaname = 'public' AND policyname ~ '_(select|insert|update|delete)_policy$'
    LOOP
        EXECUTE format('DROP POLICY %I ON %I', p.policyname, p.tablename);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['tasks', 'task_contexts', 'task_dependencies', 'workflow_states',
                             'validation_results', 'error_logs', 'user_roles', 'users',
                             'audit_logs', 'performance_metrics'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', 'audit_' || t || '_trigger', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', 'update_' || t || '_updated_at', t);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS audit_trigger_function();
DROP FUNCTION IF EXISTS get_user_accessible_tasks();
DROP FUNCTION IF EXISTS user_has_permission(text);
DROP FUNCTION IF EXISTS get_current_user_role();

-- Columns and defaults 001 has and the original lacks. workflow_states.started_at keeps its
-- default of now(): the original services rely on it when they insert a step.
ALTER TABLE task_contexts ALTER COLUMN context_data SET DEFAULT '{}'::jsonb;
ALTER TABLE task_dependencies ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW();
ALTER TABLE workflow_states
    ADD COLUMN created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    ALTER COLUMN status SET DEFAULT 'pending',
    ALTER COLUMN result SET DEFAULT '{}'::jsonb;

-- audit_logs.user_id held a name: the name moves to username, as it was; user_id becomes the
-- uuid of the user of that name (or id), NULL when no such user exists.
ALTER TABLE audit_logs ADD COLUMN username VARCHAR(100), ADD COLUMN user_uuid UUID;
UPDATE audit_logs a SET
    username = a.user_id,
    user_uuid = (SELECT u.id FROM users u
                 WHERE u.username = a.user_id OR u.id::text = a.user_id
                 ORDER BY u.username = a.user_id DESC LIMIT 1)
WHERE a.user_id IS NOT NULL;
ALTER TABLE audit_logs DROP COLUMN user_id;
ALTER TABLE audit_logs RENAME COLUMN user_uuid TO user_id;
ALTER TABLE audit_logs
    ALTER COLUMN entity_id DROP NOT NULL,
    ALTER COLUMN action TYPE VARCHAR(20),
    ALTER COLUMN "timestamp" SET NOT NULL,
    ALTER COLUMN "timestamp" SET DEFAULT clock_timestamp();

-- The original's indexes that duplicate ours (or take a name ours uses for another definition);
-- its other indexes stay.
DROP INDEX IF EXISTS idx_audit_logs_timestamp, idx_audit_logs_entity_type_id,
    idx_audit_logs_action, idx_validation_results_score, idx_validation_results_type,
    idx_error_logs_error_code, idx_error_logs_service_name, idx_error_logs_first_occurred_at,
    idx_error_logs_last_occurred_at, idx_error_logs_resolution_status,
    idx_task_dependencies_parent, idx_users_username, idx_users_email, idx_user_roles_name;
