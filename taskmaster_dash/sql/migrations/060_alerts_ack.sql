-- 060: alerts:ack, acknowledging and silencing alerts without the right to edit rules (which
-- stays alerts:manage). The on_call role gets it; other roles are left as their team set them.
UPDATE user_roles SET permissions = permissions || '["alerts:ack"]'::jsonb
WHERE role_name = 'on_call' AND NOT permissions ? 'alerts:ack';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alert_acknowledgements', 'alert_silences'] LOOP
        EXECUTE format('DROP POLICY %1$s_write ON %1$I', t);
        EXECUTE format('CREATE POLICY %1$s_write ON %1$I FOR ALL
                        USING ((SELECT user_has_permission(''alerts:ack'')
                                       OR user_has_permission(''alerts:manage'')))
                        WITH CHECK ((SELECT user_has_permission(''alerts:ack'')
                                           OR user_has_permission(''alerts:manage'')))', t);
    END LOOP;
END
$$;

-- The audit log names what its ids point at (roles, users, tasks) for whoever may read it,
-- whatever RLS would show them of those tables: the audit rows already hold the same values.
CREATE FUNCTION audit_id_labels(ids uuid[]) RETURNS TABLE (id uuid, label text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.role_name::text FROM user_roles r
    WHERE r.id = ANY(ids) AND user_has_permission('audit:read')
    UNION ALL
    SELECT u.id, u.username::text FROM users u
    WHERE u.id = ANY(ids) AND user_has_permission('audit:read')
    UNION ALL
    SELECT t.id, t.title::text FROM tasks t
    WHERE t.id = ANY(ids) AND user_has_permission('audit:read')
$$;
