-- 075: Alertmanager. Severity "none" for heartbeats (the Watchdog rule: never in the banner),
-- the Alertmanager silence ids behind each app silence (so ending it expires them), and the
-- notifier's last delivery result per Alertmanager (so /alerts can say notifications fail).
ALTER TABLE alert_states DROP CONSTRAINT alert_states_severity_check;
ALTER TABLE alert_states ADD CONSTRAINT alert_states_severity_check
    CHECK (severity IN ('critical', 'warning', 'none'));

ALTER TABLE alert_silences ADD COLUMN alertmanager_ids TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE alert_notifier_status (
    target VARCHAR(300) PRIMARY KEY,
    last_success_at TIMESTAMP WITH TIME ZONE,
    last_failure_at TIMESTAMP WITH TIME ZONE,
    last_error TEXT,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE alert_notifier_status ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_notifier_status_select ON alert_notifier_status FOR SELECT
    USING ((SELECT app_user_is_active()));
CREATE POLICY alert_notifier_status_write ON alert_notifier_status FOR ALL
    USING ((SELECT user_has_permission('alerts:manage')))
    WITH CHECK ((SELECT user_has_permission('alerts:manage')));
