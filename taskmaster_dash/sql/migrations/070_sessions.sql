-- 070: server-side sessions. The session cookie holds a random token; the database keeps only its
-- SHA-256, so a session is whatever this table says: signing out, deactivation, an admin or the
-- user themself end it (ended_at) for good, everywhere. Idle and absolute lifetimes are checked
-- by the app on every request (SESSION_IDLE_HOURS, SESSION_MAX_HOURS).

CREATE TABLE user_sessions (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),  -- the session's public handle (audit, UI)
    token_hash CHAR(64) NOT NULL UNIQUE,             -- SHA-256 of the cookie's token
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    ip_address INET,
    user_agent VARCHAR(500),
    ended_at TIMESTAMP WITH TIME ZONE,
    end_reason VARCHAR(40)
);
CREATE INDEX idx_user_sessions_user_id ON user_sessions(user_id);

-- A user reads and ends their own sessions; users:manage reads and ends anyone's.
ALTER TABLE user_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_sessions_select ON user_sessions FOR SELECT USING (
    (SELECT user_has_permission('users:manage')) OR user_id = (SELECT current_app_user_id()));
CREATE POLICY user_sessions_insert ON user_sessions FOR INSERT WITH CHECK (
    (SELECT user_has_permission('users:manage')) OR user_id = (SELECT current_app_user_id()));
CREATE POLICY user_sessions_update ON user_sessions FOR UPDATE
    USING ((SELECT user_has_permission('users:manage')) OR user_id = (SELECT current_app_user_id()))
    WITH CHECK (
        (SELECT user_has_permission('users:manage')) OR user_id = (SELECT current_app_user_id()));

-- An ended session stays ended, and a session never changes hands.
CREATE FUNCTION user_sessions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.ended_at IS NOT NULL AND NEW.ended_at IS DISTINCT FROM OLD.ended_at)
       OR NEW.token_hash IS DISTINCT FROM OLD.token_hash
       OR NEW.user_id IS DISTINCT FROM OLD.user_id
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'An ended session cannot be resumed or reassigned.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER trg_user_sessions_guard BEFORE UPDATE ON user_sessions
    FOR EACH ROW EXECUTE FUNCTION user_sessions_guard();

-- Deactivating a user ends their sessions, so reactivating them later revives none.
CREATE FUNCTION users_end_sessions_on_deactivation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE user_sessions SET ended_at = now(), end_reason = 'deactivated'
    WHERE user_id = NEW.id AND ended_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_users_end_sessions_on_deactivation AFTER UPDATE OF is_active ON users
    FOR EACH ROW WHEN (OLD.is_active AND NOT COALESCE(NEW.is_active, false))
    EXECUTE FUNCTION users_end_sessions_on_deactivation();

-- Sign-ins and ended sessions are audited (with the client's address); the once-a-minute
-- last_seen_at updates are not.
CREATE TRIGGER trg_user_sessions_audit AFTER INSERT OR UPDATE OF ended_at ON user_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_row_change();

-- The token hash joins the other secrets that the audit log shows only as "changed".
CREATE OR REPLACE FUNCTION audit_redact(row_values jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT row_values || COALESCE((
        SELECT jsonb_object_agg(key, CASE WHEN value = 'null'::jsonb THEN value
            ELSE to_jsonb('[redacted ' || left(md5(value #>> '{}'), 6) || ']') END)
        FROM jsonb_each(row_values)
        WHERE key IN ('password_hash', 'api_key_hash', 'token_hash')), '{}'::jsonb)
$$;
