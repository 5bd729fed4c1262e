-- 081: each group's spike limit for the current hour (data/error_ingest.py). The limit comes
-- from complete hours only, so it holds for the whole hour: computed once per group and hour,
-- then every occurrence compares its hour's count with it inside the ingest statement, with
-- no extra query. A table of its own, so these updates never touch error_logs (or its audit).
CREATE TABLE error_escalation_limits (
    error_id UUID PRIMARY KEY,
    bucket TIMESTAMPTZ NOT NULL,  -- the hour the limit is for
    spike_limit DOUBLE PRECISION NOT NULL
);
ALTER TABLE error_escalation_limits ENABLE ROW LEVEL SECURITY;
CREATE POLICY error_escalation_limits_select ON error_escalation_limits FOR SELECT
    USING ((SELECT user_has_permission('errors:read')));
CREATE POLICY error_escalation_limits_write ON error_escalation_limits FOR ALL
    USING ((SELECT user_has_permission('errors:write')))
    WITH CHECK ((SELECT user_has_permission('errors:write')));
GRANT SELECT, INSERT, UPDATE, DELETE ON error_escalation_limits TO taskmaster_app;

CREATE OR REPLACE FUNCTION error_groups_forget() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE error_occurrence_hourly, error_group_versions, error_group_folds,
            error_escalation_limits;
    ELSE
        DELETE FROM error_occurrence_hourly WHERE error_id IN (SELECT id FROM gone);
        DELETE FROM error_group_versions WHERE error_id IN (SELECT id FROM gone);
        DELETE FROM error_group_folds WHERE error_id IN (SELECT id FROM gone);
        DELETE FROM error_escalation_limits WHERE error_id IN (SELECT id FROM gone);
    END IF;
    RETURN NULL;
END
$$;
