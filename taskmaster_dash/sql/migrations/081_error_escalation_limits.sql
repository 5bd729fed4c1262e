-- 081: which updates of an error are occurrences (not audited, below), and each group's spike
-- limit for the current hour (data/error_ingest.py). The limit comes from complete hours only,
-- so it holds for the whole hour: computed once per group and hour, then every occurrence
-- compares its hour's count with it inside the ingest statement, with no extra query. A table
-- of its own, so these updates never touch error_logs (or its audit).
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

-- Occurrences are not audited only when the ingest records them: it marks its transaction with
-- error_occurrence_mark() (called in the WHERE of its own UPDATE, so it costs no extra round
-- trip). Any other update of an error (an original service counting occurrences itself, the
-- triage) is audited as before, even if it changes only the count.
CREATE FUNCTION error_occurrence_mark() RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT set_config('app.error_occurrence', 'on', true) IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old_values jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_values jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    status_key text := CASE TG_TABLE_NAME
        WHEN 'error_logs' THEN 'resolution_status'
        WHEN 'validation_results' THEN 'validation_status'
        ELSE 'status' END;
    -- What a new occurrence of a grouped error changes (data/error_ingest.py).
    occurrence_keys text[] := ARRAY['updated_at', 'occurrence_count', 'last_occurred_at',
        'context_data', 'error_details', 'stack_trace', 'error_message', 'user_id',
        'session_id', 'ip_address', 'user_agent', 'service_version', 'task_id',
        'validation_result_id', 'workflow_state_id', 'escalating_since', 'first_occurred_at',
        'fingerprint'];
    change text := lower(TG_OP);
    actor uuid := current_app_user_id();
    ip text := NULLIF(current_setting('app.ip_address', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        change := 'create';
    ELSIF TG_OP = 'UPDATE' THEN
        IF old_values - 'updated_at' = new_values - 'updated_at' THEN
            RETURN NULL;  -- nothing but the timestamp changed
        END IF;
        IF TG_TABLE_NAME = 'error_logs'
           AND current_setting('app.error_occurrence', true) = 'on'
           AND old_values - occurrence_keys = new_values - occurrence_keys THEN
            RETURN NULL;  -- one more occurrence of a group, recorded by the ingest
        END IF;
        IF TG_TABLE_NAME = 'error_logs' AND new_values->>'regressed_at' IS NOT NULL
           AND old_values->'regressed_at' IS DISTINCT FROM new_values->'regressed_at' THEN
            change := 'regressed';
        ELSIF old_values->status_key IS DISTINCT FROM new_values->status_key THEN
            change := 'status_change';
        END IF;
    END IF;
    INSERT INTO audit_logs (entity_type, entity_id, action, old_values, new_values,
                            user_id, username, session_id, ip_address, user_agent)
    VALUES (TG_TABLE_NAME, COALESCE(new_values->>'id', old_values->>'id')::uuid, change,
            audit_redact(old_values), audit_redact(new_values),
            actor, (SELECT username FROM users WHERE id = actor),
            NULLIF(current_setting('app.session_id', true), ''),
            CASE WHEN ip ~ '^[0-9a-fA-F:.]+$' THEN ip::inet END,
            NULLIF(current_setting('app.user_agent', true), ''));
    RETURN NULL;
END
$$;
