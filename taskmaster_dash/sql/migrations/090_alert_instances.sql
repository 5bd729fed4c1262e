-- 090: alert instances. A rule that groups its metric (errors per minute by service_name) has
-- one instance per label set, each with its own state, history, acknowledgement and silence.
-- `instance` is the label set in one canonical text ('' for a rule that does not group, else
-- 'name=value,name=value' sorted by name); `labels` holds the same as a JSON object.
ALTER TABLE alert_states ADD COLUMN instance VARCHAR(500) NOT NULL DEFAULT '';
ALTER TABLE alert_states ADD COLUMN labels JSONB NOT NULL DEFAULT '{}';
ALTER TABLE alert_states DROP CONSTRAINT alert_states_rule_name_key;
ALTER TABLE alert_states ADD CONSTRAINT alert_states_rule_instance_key UNIQUE (rule_name, instance);

ALTER TABLE alert_history ADD COLUMN instance VARCHAR(500) NOT NULL DEFAULT '';
ALTER TABLE alert_history ADD COLUMN labels JSONB NOT NULL DEFAULT '{}';
DROP INDEX idx_alert_history_rule_name;
CREATE INDEX idx_alert_history_rule_instance
    ON alert_history(rule_name, instance, created_at DESC);

-- NULL instance: the acknowledgement or silence covers every instance of the rule.
-- An acknowledgement holds notifications until `until` (NULL: until the instance resolves).
ALTER TABLE alert_acknowledgements ADD COLUMN instance VARCHAR(500);
ALTER TABLE alert_acknowledgements ADD COLUMN until TIMESTAMP WITH TIME ZONE;
ALTER TABLE alert_acknowledgements ADD CONSTRAINT alert_acknowledgements_until_check
    CHECK (until IS NULL OR until > created_at);
ALTER TABLE alert_silences ADD COLUMN instance VARCHAR(500);
