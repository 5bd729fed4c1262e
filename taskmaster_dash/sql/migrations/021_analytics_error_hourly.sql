-- 021: an hourly error rollup over the 5-minute one, so ranges of days and the "unresolved over
-- time" baseline (all history) read ~12 times fewer rows.
--
-- analytics_refresh() keeps its signature: the 020 body is renamed analytics_refresh_steps and
-- the new function runs it, then rebuilds the hours whose 5-minute rows it just rewrote (rows
-- inserted in this transaction carry refreshed_at = now()). Only complete hours are stored.

ALTER TABLE analytics_error_5m ADD COLUMN refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE TABLE analytics_error_hourly (
    bucket TIMESTAMPTZ NOT NULL,
    error_code TEXT NOT NULL,
    error_category TEXT NOT NULL,
    error_severity TEXT NOT NULL,
    service_name TEXT NOT NULL,
    created_n INTEGER NOT NULL,
    occurrences BIGINT NOT NULL,
    resolved_n INTEGER NOT NULL,
    resolve_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, error_code, error_category, error_severity, service_name)
);
ALTER TABLE analytics_error_hourly ENABLE ROW LEVEL SECURITY;
CREATE POLICY analytics_error_hourly_select ON analytics_error_hourly FOR SELECT
    USING ((SELECT user_has_permission('errors:read')));

ALTER FUNCTION analytics_refresh(int) RENAME TO analytics_refresh_steps;
REVOKE ALL ON FUNCTION analytics_refresh_steps(int) FROM taskmaster_app;

CREATE FUNCTION analytics_refresh(p_hours int DEFAULT 3) RETURNS TABLE (rollup text, steps int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_complete timestamptz;
    v_hours timestamptz[];
BEGIN
    RETURN QUERY SELECT * FROM analytics_refresh_steps(p_hours);
    SELECT analytics_bin(interval '1 hour', covered_until) INTO v_complete
    FROM analytics_rollup_state WHERE analytics_rollup_state.rollup = 'errors';
    IF p_hours IS NULL THEN
        TRUNCATE analytics_error_hourly;
        v_hours := ARRAY(SELECT DISTINCT analytics_bin(interval '1 hour', bucket)
                         FROM analytics_error_5m);
    ELSE
        v_hours := ARRAY(SELECT DISTINCT analytics_bin(interval '1 hour', bucket)
                         FROM analytics_error_5m WHERE refreshed_at = now());
        DELETE FROM analytics_error_hourly WHERE bucket = ANY (v_hours);
    END IF;
    INSERT INTO analytics_error_hourly
    SELECT h.b, r.error_code, r.error_category, r.error_severity, r.service_name,
           sum(r.created_n), sum(r.occurrences), sum(r.resolved_n), sum(r.resolve_seconds)
    FROM unnest(v_hours) AS h(b)
    JOIN analytics_error_5m r ON r.bucket >= h.b AND r.bucket < h.b + interval '1 hour'
    WHERE h.b + interval '1 hour' <= v_complete
    GROUP BY 1, 2, 3, 4, 5;
    rollup := 'errors (hourly)'; steps := cardinality(v_hours); RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION analytics_refresh(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_refresh(int) TO taskmaster_app;

CREATE FUNCTION analytics_reset_error_hours() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE analytics_error_hourly;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_error_logs_analytics_reset_hours AFTER TRUNCATE ON error_logs
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset_error_hours();
