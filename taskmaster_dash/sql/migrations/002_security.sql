-- 002: the app's database role, default roles, the system user, the audit trigger, and RLS.
--
-- The current user comes from transaction settings that the app sets at the start of every
-- transaction (data/db.py): app.current_user_id, app.session_id, app.ip_address, app.user_agent.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskmaster_app') THEN
        CREATE ROLE taskmaster_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- Default roles: the spec's four with exactly the spec's permissions, plus on_call.
INSERT INTO user_roles (role_name, role_description, permissions) VALUES
    ('admin', 'Admin: full system access', '["*"]'),
    ('developer', 'Developer: task and validation access',
        '["tasks:read", "tasks:write", "validations:read", "validations:write", "errors:read"]'),
    ('viewer', 'Viewer: read-only access', '["tasks:read", "validations:read", "errors:read"]'),
    ('api_client', 'API Client: external integration access',
        '["tasks:read", "tasks:write", "validations:write"]'),
    ('on_call', 'On-call: error triage',
        '["errors:read", "errors:write", "tasks:read", "validations:read"]')
ON CONFLICT (role_name) DO NOTHING;

-- The identity of the app's own background work (alert evaluator, sign-in lookups). It has no
-- password, so nobody can sign in as it; its changes show as "system" in the audit log.
INSERT INTO users (id, username, email, role_id, metadata)
SELECT '00000000-0000-0000-0000-000000000001', 'system', 'system@taskmaster.invalid', id,
       '{"system": true}'
FROM user_roles WHERE role_name = 'admin'
ON CONFLICT (id) DO NOTHING;

CREATE FUNCTION current_app_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('app.current_user_id', true), '')::uuid
$$;

CREATE FUNCTION current_app_permissions() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE((
        SELECT r.permissions
        FROM users u JOIN user_roles r ON r.id = u.role_id
        WHERE u.id = current_app_user_id() AND u.is_active AND r.is_active
    ), '[]'::jsonb)
$$;

CREATE FUNCTION user_has_permission(permission text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT current_app_permissions() ? '*' OR current_app_permissions() ? permission
$$;

-- Developers see tasks assigned to them (by username or e-mail) or unassigned; others see all.
CREATE FUNCTION current_user_sees_all_tasks() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE((
        SELECT r.role_name <> 'developer'
        FROM users u JOIN user_roles r ON r.id = u.role_id
        WHERE u.id = current_app_user_id()
    ), false)
$$;

CREATE FUNCTION current_app_user_names() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE((SELECT ARRAY[username::text, email::text] FROM users
                     WHERE id = current_app_user_id()), ARRAY[]::text[])
$$;

-- The spec's function, for compatibility with existing queries and the troubleshooting guide.
CREATE FUNCTION get_user_accessible_tasks() RETURNS TABLE (task_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.id FROM tasks t
    WHERE user_has_permission('tasks:read')
      AND (current_user_sees_all_tasks() OR t.assigned_to IS NULL
           OR t.assigned_to = ANY (current_app_user_names()))
$$;

-- Audit: one row per change to any audited table, with who, when, before and after.
-- Secrets never reach the log: hashes are replaced by a marker that still shows a change.
CREATE FUNCTION audit_redact(row_values jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN row_values IS NULL THEN NULL ELSE
        row_values
        || CASE WHEN row_values ? 'password_hash' THEN jsonb_build_object('password_hash',
               CASE WHEN row_values->>'password_hash' IS NULL THEN NULL
                    ELSE '[redacted ' || left(md5(row_values->>'password_hash'), 6) || ']' END)
           ELSE '{}'::jsonb END
        || CASE WHEN row_values ? 'api_key_hash' THEN jsonb_build_object('api_key_hash',
               CASE WHEN row_values->>'api_key_hash' IS NULL THEN NULL
                    ELSE '[redacted ' || left(md5(row_values->>'api_key_hash'), 6) || ']' END)
           ELSE '{}'::jsonb END
    END
$$;

CREATE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old_values jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_values jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    status_key text := CASE TG_TABLE_NAME
        WHEN 'error_logs' THEN 'resolution_status'
        WHEN 'validation_results' THEN 'validation_status'
        ELSE 'status' END;
    change text := lower(TG_OP);
    actor uuid := current_app_user_id();
    ip text := NULLIF(current_setting('app.ip_address', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        change := 'create';
    ELSIF TG_OP = 'UPDATE' THEN
        IF old_values - 'updated_at' = new_values - 'updated_at' THEN
            RETURN NULL;  -- nothing but the timestamp changed
        END IF;
        IF old_values->status_key IS DISTINCT FROM new_values->status_key THEN
            change := 'status_change';
        END IF;
    END IF;
    INSERT INTO audit_logs (entity_type, entity_id, action, old_values, new_values,
                            user_id, username, session_id, ip_address, user_agent)
    VALUES (TG_TABLE_NAME, COALESCE(new_values->>'id', old_values->>'id')::uuid, change,
            audit_redact(old_values), audit_redact(new_values),
            actor, (SELECT username FROM users WHERE id = actor),
            NULLIF(current_setting('app.session_id', true), ''),
            CASE WHEN ip ~ '^[0-9a-fA-F:.]+$' THEN ip::inet END,
            NULLIF(current_setting('app.user_agent', true), ''));
    RETURN NULL;
END
$$;

-- A user without users:manage may edit their own row, but not their role, activity or lock.
CREATE FUNCTION users_guard_self_service() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Applies to the app's users; the owner's maintenance sessions set no current user.
    IF current_app_user_id() IS NOT NULL AND NOT user_has_permission('users:manage') AND (
        NEW.role_id IS DISTINCT FROM OLD.role_id
        OR NEW.is_active IS DISTINCT FROM OLD.is_active
        OR NEW.username IS DISTINCT FROM OLD.username
        OR NEW.locked_until IS DISTINCT FROM OLD.locked_until
        OR NEW.login_attempts IS DISTINCT FROM OLD.login_attempts) THEN
        RAISE EXCEPTION 'permission denied: only users:manage may change role, status or lock'
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER trg_users_guard_self_service BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_guard_self_service();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tasks', 'task_contexts', 'task_dependencies', 'workflow_states',
                             'validation_results', 'error_logs', 'user_roles', 'users'] LOOP
        EXECUTE format(
            'CREATE TRIGGER trg_%1$s_audit AFTER INSERT OR UPDATE OR DELETE ON %1$I
             FOR EACH ROW EXECUTE FUNCTION audit_row_change()', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskmaster_dash_migrations ENABLE ROW LEVEL SECURITY;

-- Privileges for the app role; RLS narrows them per user. Tables added by later migrations
-- get the same grants by default, and must enable RLS themselves.
GRANT USAGE ON SCHEMA public TO taskmaster_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks, task_contexts, task_dependencies,
    workflow_states, validation_results, error_logs, user_roles, users TO taskmaster_app;
GRANT SELECT ON audit_logs, taskmaster_dash_migrations TO taskmaster_app;  -- views: sql/repeatable
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO taskmaster_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO taskmaster_app;

-- Policies. Permission checks are wrapped in (SELECT ...) so PostgreSQL evaluates them once per
-- query, not once per row: this matters at millions of rows.
CREATE POLICY tasks_select ON tasks FOR SELECT USING (
    (SELECT user_has_permission('tasks:read')) AND (
        (SELECT current_user_sees_all_tasks()) OR assigned_to IS NULL
        OR assigned_to IN (SELECT unnest(current_app_user_names()))));
CREATE POLICY tasks_insert ON tasks FOR INSERT
    WITH CHECK ((SELECT user_has_permission('tasks:write')));
CREATE POLICY tasks_update ON tasks FOR UPDATE
    USING ((SELECT user_has_permission('tasks:write')))
    WITH CHECK ((SELECT user_has_permission('tasks:write')));
CREATE POLICY tasks_delete ON tasks FOR DELETE USING ((SELECT user_has_permission('tasks:write')));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['task_contexts', 'task_dependencies', 'workflow_states'] LOOP
        EXECUTE format('CREATE POLICY %1$s_select ON %1$I FOR SELECT
                        USING ((SELECT user_has_permission(''tasks:read'')))', t);
        EXECUTE format('CREATE POLICY %1$s_write ON %1$I FOR ALL
                        USING ((SELECT user_has_permission(''tasks:write'')))
                        WITH CHECK ((SELECT user_has_permission(''tasks:write'')))', t);
    END LOOP;
END
$$;

CREATE POLICY validation_results_select ON validation_results FOR SELECT
    USING ((SELECT user_has_permission('validations:read')));
CREATE POLICY validation_results_write ON validation_results FOR ALL
    USING ((SELECT user_has_permission('validations:write')))
    WITH CHECK ((SELECT user_has_permission('validations:write')));

CREATE POLICY error_logs_select ON error_logs FOR SELECT
    USING ((SELECT user_has_permission('errors:read')));
CREATE POLICY error_logs_insert ON error_logs FOR INSERT
    WITH CHECK ((SELECT user_has_permission('errors:write')));
CREATE POLICY error_logs_update ON error_logs FOR UPDATE
    USING ((SELECT user_has_permission('errors:write')))
    WITH CHECK ((SELECT user_has_permission('errors:write')));
CREATE POLICY error_logs_delete ON error_logs FOR DELETE
    USING ((SELECT user_has_permission('*')));

CREATE POLICY user_roles_select ON user_roles FOR SELECT USING (
    (SELECT user_has_permission('users:manage'))
    OR id = (SELECT role_id FROM users WHERE id = (SELECT current_app_user_id())));
CREATE POLICY user_roles_write ON user_roles FOR ALL
    USING ((SELECT user_has_permission('users:manage')))
    WITH CHECK ((SELECT user_has_permission('users:manage')));

CREATE POLICY users_select ON users FOR SELECT USING (
    (SELECT user_has_permission('users:manage')) OR id = (SELECT current_app_user_id()));
CREATE POLICY users_update ON users FOR UPDATE
    USING ((SELECT user_has_permission('users:manage')) OR id = (SELECT current_app_user_id()))
    WITH CHECK ((SELECT user_has_permission('users:manage')) OR id = (SELECT current_app_user_id()));
CREATE POLICY users_insert ON users FOR INSERT
    WITH CHECK ((SELECT user_has_permission('users:manage')));
CREATE POLICY users_delete ON users FOR DELETE
    USING ((SELECT user_has_permission('users:manage')));

-- Audit rows are written only by the trigger. Admins read all; whoever may read errors may
-- read the history of errors (the triage detail shows it).
CREATE POLICY audit_logs_select ON audit_logs FOR SELECT USING (
    (SELECT user_has_permission('audit:read'))
    OR (entity_type = 'error_logs' AND (SELECT user_has_permission('errors:read'))));

CREATE POLICY taskmaster_dash_migrations_select ON taskmaster_dash_migrations
    FOR SELECT USING (true);
