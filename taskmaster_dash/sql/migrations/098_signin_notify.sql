-- 098: every committed change that may end a session or change a user's rights tells the app's
-- processes at once, on every host, whoever made it (the app, or psql behind its back): each
-- process LISTENs on taskmaster_signin and drops the sessions it keeps in memory
-- (SESSION_CACHE_SECONDS, data/revocation.py SigninListener). Statement-level: one notice per
-- statement, and PostgreSQL delivers equal notices of one transaction once, after the commit.
-- The columns are those a session's check reads (data/sessions.py); last_seen_at, written once
-- a minute per session, is not one of them.

CREATE FUNCTION signin_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskmaster_signin', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER trg_users_signin_changed
    AFTER UPDATE OF username, email, password_hash, role_id, is_active, locked_until
          OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION signin_changed();
CREATE TRIGGER trg_user_roles_signin_changed
    AFTER UPDATE OF role_name, permissions, is_active OR DELETE OR TRUNCATE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION signin_changed();
CREATE TRIGGER trg_user_sessions_signin_changed
    AFTER UPDATE OF ended_at OR DELETE OR TRUNCATE ON user_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION signin_changed();
