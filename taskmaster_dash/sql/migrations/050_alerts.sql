-- 050: alerts. Admins' rule overrides, the state of every rule, the history of its transitions,
-- acknowledgements and silences. Every signed-in user may read them all; changing them needs
-- alerts:manage. The evaluator writes state and history as the built-in system user.

-- True for any active user of an active role: "every signed-in user" for the RLS policies.
CREATE FUNCTION app_user_is_active() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM users u JOIN user_roles r ON r.id = u.role_id
        WHERE u.id = current_app_user_id() AND u.is_active AND r.is_active)
$$;

CREATE TABLE alert_rule_overrides (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    rule_name VARCHAR(80) NOT NULL UNIQUE,
    threshold DOUBLE PRECISION CHECK (threshold >= 0 AND threshold <= 1e12),
    comparison VARCHAR(2) CHECK (comparison IN ('>', '>=', '<', '<=', '==', '!=')),
    for_seconds INTEGER CHECK (for_seconds BETWEEN 0 AND 604800),
    enabled BOOLEAN,
    updated_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_alert_rule_overrides_updated_by ON alert_rule_overrides(updated_by);

CREATE TABLE alert_states (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    rule_name VARCHAR(80) NOT NULL UNIQUE,
    title VARCHAR(200) NOT NULL,
    severity VARCHAR(20) NOT NULL CHECK (severity IN ('critical', 'warning')),
    link VARCHAR(200) NOT NULL DEFAULT '/alerts',
    state VARCHAR(20) NOT NULL
        CHECK (state IN ('normal', 'pending', 'firing', 'no_data', 'error', 'disabled')),
    value DOUBLE PRECISION,
    message TEXT,
    since TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    fired_at TIMESTAMP WITH TIME ZONE,
    notified BOOLEAN NOT NULL DEFAULT false,
    last_evaluated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
-- The banner's one query reads only the few rows that are not normal.
CREATE INDEX idx_alert_states_state ON alert_states(state) WHERE state IN ('firing', 'error');

CREATE TABLE alert_history (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    rule_name VARCHAR(80) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    value DOUBLE PRECISION,
    message TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_alert_history_created_at ON alert_history(created_at DESC);
CREATE INDEX idx_alert_history_rule_name ON alert_history(rule_name, created_at DESC);

CREATE TABLE alert_acknowledgements (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    rule_name VARCHAR(80) NOT NULL,
    note TEXT NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
    acknowledged_by UUID REFERENCES users(id) ON DELETE SET NULL,
    username VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_alert_acknowledgements_rule ON alert_acknowledgements(rule_name, created_at DESC);
CREATE INDEX idx_alert_acknowledgements_by ON alert_acknowledgements(acknowledged_by);

CREATE TABLE alert_silences (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    rule_name VARCHAR(80) NOT NULL,
    until TIMESTAMP WITH TIME ZONE NOT NULL,
    note TEXT CHECK (length(note) <= 2000),
    created_by UUID REFERENCES users(id) ON DELETE SET NULL,
    username VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    CHECK (until > created_at)
);
CREATE INDEX idx_alert_silences_rule ON alert_silences(rule_name, until DESC);
CREATE INDEX idx_alert_silences_created_by ON alert_silences(created_by);

CREATE TRIGGER trg_alert_rule_overrides_updated_at BEFORE UPDATE ON alert_rule_overrides
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Changes people make are audited. State and history are written by the evaluator every few
-- seconds; alert_history is their record, so they are not audited row by row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alert_rule_overrides', 'alert_acknowledgements',
                             'alert_silences'] LOOP
        EXECUTE format(
            'CREATE TRIGGER trg_%1$s_audit AFTER INSERT OR UPDATE OR DELETE ON %1$I
             FOR EACH ROW EXECUTE FUNCTION audit_row_change()', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['alert_rule_overrides', 'alert_states', 'alert_history',
                             'alert_acknowledgements', 'alert_silences'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %1$s_select ON %1$I FOR SELECT
                        USING ((SELECT app_user_is_active()))', t);
        EXECUTE format('CREATE POLICY %1$s_write ON %1$I FOR ALL
                        USING ((SELECT user_has_permission(''alerts:manage'')))
                        WITH CHECK ((SELECT user_has_permission(''alerts:manage'')))', t);
    END LOOP;
END
$$;

-- Everyone who can see alerts can see who acknowledged, silenced or re-tuned them.
CREATE POLICY audit_logs_select_alerts ON audit_logs FOR SELECT USING (
    entity_type IN ('alert_rule_overrides', 'alert_acknowledgements', 'alert_silences')
    AND (SELECT app_user_is_active()));
