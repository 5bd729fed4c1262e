-- 056: the original TaskMaster's services that write as their own PostgreSQL login with
-- `SET ROLE taskmaster_<role>` (spec/original-schema.md) keep the access that role had: the
-- permissions of our default role of the same name (taskmaster_api_client -> api_client).
-- Only while app.current_user_id is unset, and only when current_user is one of those four
-- PostgreSQL roles: taskmaster_app always decides by app.current_user_id, and any other role
-- gets nothing (the original treated an unknown user as a viewer; we do not). On a fresh
-- database those roles do not exist and these policies grant nobody anything.

-- service_role is the caller's current_user, passed in by the policy: inside this SECURITY
-- DEFINER function current_user is the owner.
CREATE FUNCTION original_service_may(service_role name, permission text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT current_app_user_id() IS NULL AND COALESCE((
        SELECT r.permissions ? '*' OR r.permissions ? permission
        FROM user_roles r
        WHERE r.is_active
          AND service_role IN ('taskmaster_admin', 'taskmaster_developer', 'taskmaster_viewer',
                               'taskmaster_api_client')
          AND r.role_name = substr(service_role, length('taskmaster_') + 1)
    ), false)
$$;

-- Read, insert and update, as the original's policies allowed (deletes stay with our users);
-- a developer service, like the original's, sees only unassigned tasks or its own.
CREATE POLICY tasks_original_service_select ON tasks FOR SELECT USING (
    (SELECT original_service_may(current_user, 'tasks:read'))
    AND (current_user <> 'taskmaster_developer' OR assigned_to IS NULL
         OR assigned_to = current_user::text));
DO $$
DECLARE
    area record;
BEGIN
    FOR area IN SELECT * FROM (VALUES ('tasks', 'tasks'), ('task_contexts', 'tasks'),
                                      ('task_dependencies', 'tasks'), ('workflow_states', 'tasks'),
                                      ('performance_metrics', 'tasks'),
                                      ('validation_results', 'validations'),
                                      ('error_logs', 'errors')) AS a (tbl, perm) LOOP
        IF area.tbl <> 'tasks' THEN
            EXECUTE format('CREATE POLICY %1$s_original_service_select ON %1$I FOR SELECT
                            USING ((SELECT original_service_may(current_user, %2$L)))',
                           area.tbl, area.perm || ':read');
        END IF;
        EXECUTE format('CREATE POLICY %1$s_original_service_insert ON %1$I FOR INSERT
                        WITH CHECK ((SELECT original_service_may(current_user, %2$L)))',
                       area.tbl, area.perm || ':write');
        EXECUTE format('CREATE POLICY %1$s_original_service_update ON %1$I FOR UPDATE
                        USING ((SELECT original_service_may(current_user, %2$L)))
                        WITH CHECK ((SELECT original_service_may(current_user, %2$L)))',
                       area.tbl, area.perm || ':write');
    END LOOP;
END
$$;
