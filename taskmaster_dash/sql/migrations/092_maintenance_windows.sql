-- 092: maintenance windows. A window mutes alerts while it is open: once (starts_at..ends_at)
-- or every week (on `days`, from start_time to end_time in `time_zone`; an end at or before the
-- start ends the next day). Empty `matchers` mutes every rule, else only the alert instances
-- whose labels match all of them ([{"name", "op", "value"}], op one of = != =~ !~).
-- Every signed-in user may read them; creating and deleting needs alerts:manage.
CREATE TABLE maintenance_windows (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(100) NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    kind VARCHAR(10) NOT NULL CHECK (kind IN ('once', 'weekly')),
    starts_at TIMESTAMP WITH TIME ZONE,
    ends_at TIMESTAMP WITH TIME ZONE,
    days SMALLINT[],  -- 0 = Monday .. 6 = Sunday (Python's weekday())
    start_time TIME,
    end_time TIME,
    time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',
    matchers JSONB NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(matchers) = 'array' AND jsonb_array_length(matchers) <= 20),
    note TEXT CHECK (length(note) <= 2000),
    created_by UUID REFERENCES users(id) ON DELETE SET NULL,
    username VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    CHECK (
        (kind = 'once' AND starts_at IS NOT NULL AND ends_at > starts_at
         AND days IS NULL AND start_time IS NULL AND end_time IS NULL)
        OR (kind = 'weekly' AND starts_at IS NULL AND ends_at IS NULL
            AND cardinality(days) BETWEEN 1 AND 7 AND days <@ '{0,1,2,3,4,5,6}'::smallint[]
            AND start_time IS NOT NULL AND end_time IS NOT NULL))
);
CREATE INDEX idx_maintenance_windows_created_by ON maintenance_windows(created_by);

-- The Alertmanager silences made for each occurrence of a window (alerts/maintenance_sync.py).
-- No foreign key: a deleted window's rows stay until its silences are expired, so an
-- Alertmanager that was down at the time is caught up by the next sync.
CREATE TABLE maintenance_window_silences (
    window_id UUID NOT NULL,
    starts_at TIMESTAMP WITH TIME ZONE NOT NULL,
    ends_at TIMESTAMP WITH TIME ZONE NOT NULL,
    silence_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (window_id, starts_at)
);

-- Windows are changed by people: audited. The silence links are the sync's bookkeeping.
CREATE TRIGGER trg_maintenance_windows_audit AFTER INSERT OR UPDATE OR DELETE
    ON maintenance_windows FOR EACH ROW EXECUTE FUNCTION audit_row_change();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['maintenance_windows', 'maintenance_window_silences'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %1$s_select ON %1$I FOR SELECT
                        USING ((SELECT app_user_is_active()))', t);
        EXECUTE format('CREATE POLICY %1$s_write ON %1$I FOR ALL
                        USING ((SELECT user_has_permission(''alerts:manage'')))
                        WITH CHECK ((SELECT user_has_permission(''alerts:manage'')))', t);
    END LOOP;
END
$$;

-- Everyone who can see alerts can see who opened or removed a maintenance window.
CREATE POLICY audit_logs_select_maintenance ON audit_logs FOR SELECT USING (
    entity_type = 'maintenance_windows' AND (SELECT app_user_is_active()));
