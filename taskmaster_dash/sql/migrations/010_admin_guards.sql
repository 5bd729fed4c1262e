-- 010: rules the admin pages rely on, enforced by the database too, so hand-written SQL cannot
-- break them either: someone must always be able to manage users; nobody deactivates or demotes
-- their own account; the spec's four roles stay; a role still held by active users stays active.
-- Messages raised here (SQLSTATE P0001) are shown to the user as they are (data/db.py).

-- Active, non-system users whose active role lets them manage users.
CREATE FUNCTION active_user_manager_count() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*)
    FROM users u JOIN user_roles r ON r.id = u.role_id
    WHERE u.is_active AND r.is_active
      AND u.id <> '00000000-0000-0000-0000-000000000001'::uuid
      AND (r.permissions ? '*' OR r.permissions ? 'users:manage')
$$;

CREATE FUNCTION role_manages_users(permissions jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT permissions ? '*' OR permissions ? 'users:manage'
$$;

CREATE FUNCTION users_keep_a_manager() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was_manager boolean;
BEGIN
    SELECT OLD.is_active AND r.is_active AND role_manages_users(r.permissions)
           AND OLD.id <> '00000000-0000-0000-0000-000000000001'::uuid
      INTO was_manager
      FROM user_roles r WHERE r.id = OLD.role_id;
    IF was_manager AND active_user_manager_count() = 0 THEN
        RAISE EXCEPTION 'The last active admin cannot be deactivated, demoted or deleted.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_users_keep_a_manager AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_keep_a_manager();

CREATE FUNCTION users_guard_own_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_app_user_id() IS NOT NULL AND current_app_user_id() = OLD.id AND (
        TG_OP = 'DELETE'
        OR NEW.role_id IS DISTINCT FROM OLD.role_id
        OR (OLD.is_active AND NOT COALESCE(NEW.is_active, false))) THEN
        RAISE EXCEPTION 'You cannot deactivate, delete or change the role of your own account.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER trg_users_guard_own_account BEFORE UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_guard_own_account();

CREATE FUNCTION user_roles_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    holders bigint;
BEGIN
    IF OLD.role_name IN ('admin', 'developer', 'viewer', 'api_client') THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'The built-in role % cannot be deleted.', OLD.role_name;
        ELSIF NEW.role_name IS DISTINCT FROM OLD.role_name THEN
            RAISE EXCEPTION 'The built-in role % cannot be renamed.', OLD.role_name;
        ELSIF NOT COALESCE(NEW.is_active, false) THEN
            RAISE EXCEPTION 'The built-in role % cannot be deactivated.', OLD.role_name;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.is_active AND NOT COALESCE(NEW.is_active, false) THEN
        SELECT count(*) INTO holders FROM users WHERE role_id = OLD.id AND is_active;
        IF holders > 0 THEN
            RAISE EXCEPTION 'The role % is held by % active user(s); move them to another role first.',
                OLD.role_name, holders;
        END IF;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER trg_user_roles_guard BEFORE UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION user_roles_guard();

-- Taking users:manage away from a role (or deactivating it) must leave someone who manages users.
CREATE FUNCTION user_roles_keep_a_manager() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.is_active AND role_manages_users(OLD.permissions)
       AND active_user_manager_count() = 0
       AND EXISTS (SELECT 1 FROM users WHERE role_id = OLD.id AND is_active
                   AND id <> '00000000-0000-0000-0000-000000000001'::uuid) THEN
        RAISE EXCEPTION 'This change would leave no active user who can manage users.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_user_roles_keep_a_manager AFTER UPDATE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION user_roles_keep_a_manager();

-- API keys are looked up by their SHA-256 hash on every API request.
CREATE UNIQUE INDEX idx_users_api_key_hash ON users(api_key_hash) WHERE api_key_hash IS NOT NULL;
CREATE INDEX idx_users_lower_email ON users(lower(email));
-- The audit page filters by who made a change, newest first.
CREATE INDEX idx_audit_logs_username_timestamp ON audit_logs(username, "timestamp" DESC);
CREATE INDEX idx_audit_logs_action_timestamp ON audit_logs(action, "timestamp" DESC);
CREATE INDEX idx_audit_logs_entity_type_timestamp ON audit_logs(entity_type, "timestamp" DESC);
