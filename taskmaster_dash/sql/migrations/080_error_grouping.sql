-- 080: errors that group, regress and escalate (issue 14).
--
-- A group is one error_logs row: every occurrence with the same fingerprint (data/
-- error_fingerprint.py) adds to its occurrence_count and moves last_occurred_at instead of making
-- a row (data/error_ingest.py). At most one OPEN row per fingerprint, enforced by a partial
-- unique index, so concurrent posts of a new error meet in INSERT ... ON CONFLICT. Rows without a
-- fingerprint (written before this migration) are grouped by `taskmaster-dash group-errors`.

ALTER TABLE error_logs
    ADD COLUMN fingerprint VARCHAR(64),
    ADD COLUMN regressed_at TIMESTAMPTZ,       -- last time a resolved error came back
    ADD COLUMN escalating_since TIMESTAMPTZ;   -- set while the hourly rate is a spike

-- Looking a fingerprint up in any status (closed groups: resolved, wont_fix, duplicate).
CREATE INDEX idx_error_logs_fingerprint ON error_logs (fingerprint, last_occurred_at DESC);
-- One open group per fingerprint: the target of ingest's ON CONFLICT.
CREATE UNIQUE INDEX idx_error_logs_open_fingerprint ON error_logs (fingerprint)
    WHERE resolution_status IN ('unresolved', 'investigating');
-- Triage's "Regressed" and "Escalating" filters and sorts: few rows, small partial indexes.
CREATE INDEX idx_error_logs_regressed ON error_logs (regressed_at DESC, id DESC)
    WHERE regressed_at IS NOT NULL;
CREATE INDEX idx_error_logs_escalating ON error_logs (escalating_since DESC, id DESC)
    WHERE escalating_since IS NOT NULL;

-- Occurrences per group and hour: the triage sparkline and the escalation baseline.
CREATE TABLE error_occurrence_hourly (
    error_id UUID NOT NULL,
    bucket TIMESTAMPTZ NOT NULL,  -- date_trunc('hour', occurred_at) in UTC
    occurrences INTEGER NOT NULL CHECK (occurrences > 0),
    PRIMARY KEY (error_id, bucket)
);

-- The services and versions a group was seen in.
CREATE TABLE error_group_versions (
    error_id UUID NOT NULL,
    service_name VARCHAR(100) NOT NULL DEFAULT '',
    service_version VARCHAR(50) NOT NULL DEFAULT '',
    occurrences BIGINT NOT NULL CHECK (occurrences > 0),
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (error_id, service_name, service_version)
);

-- A group's history: the rows group-errors folded into it, each kept whole (to_jsonb of the
-- row), so no information is lost. folded_id is the key, so folding twice is a no-op.
CREATE TABLE error_group_folds (
    folded_id UUID PRIMARY KEY,
    error_id UUID NOT NULL,
    folded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    folded_row JSONB NOT NULL
);
CREATE INDEX idx_error_group_folds_error ON error_group_folds (error_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['error_occurrence_hourly', 'error_group_versions',
                             'error_group_folds'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %1$s_select ON %1$I FOR SELECT
                        USING ((SELECT user_has_permission(''errors:read'')))', t);
        EXECUTE format('CREATE POLICY %1$s_write ON %1$I FOR ALL
                        USING ((SELECT user_has_permission(''errors:write'')))
                        WITH CHECK ((SELECT user_has_permission(''errors:write'')))', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON error_occurrence_hourly, error_group_versions, error_group_folds TO taskmaster_app;

-- The three tables belong to their error_logs row. Triggers, not foreign keys, remove them with
-- it, so `TRUNCATE error_logs` (tests, seed) keeps working without CASCADE.
CREATE FUNCTION error_groups_forget() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE error_occurrence_hourly, error_group_versions, error_group_folds;
    ELSE
        DELETE FROM error_occurrence_hourly WHERE error_id IN (SELECT id FROM gone);
        DELETE FROM error_group_versions WHERE error_id IN (SELECT id FROM gone);
        DELETE FROM error_group_folds WHERE error_id IN (SELECT id FROM gone);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_error_logs_groups_truncate AFTER TRUNCATE ON error_logs
    FOR EACH STATEMENT EXECUTE FUNCTION error_groups_forget();
CREATE TRIGGER trg_error_logs_groups_delete AFTER DELETE ON error_logs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION error_groups_forget();

-- The audit log gains "regressed" (a resolved error that came back), and no longer records each
-- occurrence of a grouped error: an update that changes only occurrence bookkeeping (the count,
-- last seen, the newest occurrence's context, escalation) is not audited, so a noisy error does
-- not write an audit row per occurrence. Status changes, notes and assignments still are.
ALTER TABLE audit_logs DROP CONSTRAINT IF EXISTS audit_logs_action_check,
    ADD CONSTRAINT audit_logs_action_check
        CHECK (action IN ('create', 'update', 'delete', 'status_change', 'regressed'));

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
        IF TG_TABLE_NAME = 'error_logs' AND old_values - occurrence_keys = new_values - occurrence_keys
        THEN
            RETURN NULL;  -- one more occurrence of a group
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
