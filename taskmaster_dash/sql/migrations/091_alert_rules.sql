-- 091: alert rules written in the app (/alerts, alerts:manage). `definition` is the rule in the
-- shape of one rules.yaml entry (the same parser reads both: alerts/rules.py parse_rule); the
-- app checks it before saving, the database only keeps it bounded. Every signed-in user may
-- read the rules (the evaluator and the /alerts page do); writing needs alerts:manage.
CREATE TABLE alert_rules (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(80) NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z][A-Za-z0-9_]{0,79}$'),
    definition JSONB NOT NULL
        CHECK (jsonb_typeof(definition) = 'object' AND definition->>'name' = name
               AND octet_length(definition::text) <= 20000),
    enabled BOOLEAN NOT NULL DEFAULT true,
    created_by UUID REFERENCES users(id) ON DELETE SET NULL,
    updated_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_alert_rules_created_by ON alert_rules(created_by);
CREATE INDEX idx_alert_rules_updated_by ON alert_rules(updated_by);

CREATE TRIGGER trg_alert_rules_updated_at BEFORE UPDATE ON alert_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_alert_rules_audit AFTER INSERT OR UPDATE OR DELETE ON alert_rules
    FOR EACH ROW EXECUTE FUNCTION audit_row_change();

ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_rules_select ON alert_rules FOR SELECT USING ((SELECT app_user_is_active()));
CREATE POLICY alert_rules_write ON alert_rules FOR ALL
    USING ((SELECT user_has_permission('alerts:manage')))
    WITH CHECK ((SELECT user_has_permission('alerts:manage')));

-- Everyone who can see alerts can see who wrote or changed a rule.
CREATE POLICY audit_logs_select_alert_rules ON audit_logs FOR SELECT USING (
    entity_type = 'alert_rules' AND (SELECT app_user_is_active()));
