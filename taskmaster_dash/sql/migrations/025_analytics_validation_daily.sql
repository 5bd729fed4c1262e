-- 025: faster validation panels over long ranges.
--
-- 1. Daily layers over the hourly validation rollups (runs, and the score/execution-time
--    histograms): a 30-day percentile or mean reads ~30 rows per key instead of ~720. Readers
--    (data/analytics_validations.py) take whole days from the daily table and the hours at
--    either end from the hourly one. A day is recomputed whenever one of its hours is
--    (hourly rows written in this transaction carry refreshed_at = now()).
-- 2. "Lowest-scoring recent runs": an index in the panel's exact order (score, newest first),
--    so the first rows are read off the index even when thousands of runs share the lowest
--    score (it replaces the (score, created_at) index of 020).

ALTER TABLE analytics_validation_hourly ADD COLUMN refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE TABLE analytics_validation_daily (
    bucket TIMESTAMPTZ NOT NULL,
    validation_type TEXT NOT NULL,
    validation_status TEXT NOT NULL,
    version TEXT NOT NULL,
    runs INTEGER NOT NULL,
    score_n INTEGER NOT NULL,
    score_sum NUMERIC NOT NULL,
    retried_n INTEGER NOT NULL,
    retries_sum INTEGER NOT NULL,
    PRIMARY KEY (bucket, validation_type, validation_status, version)
);
CREATE TABLE analytics_validation_hist_daily (
    bucket TIMESTAMPTZ NOT NULL,
    validation_type TEXT NOT NULL,
    kind CHAR(1) NOT NULL CHECK (kind IN ('s', 'e')),
    bin SMALLINT NOT NULL,
    runs INTEGER NOT NULL,
    PRIMARY KEY (bucket, validation_type, kind, bin)
);
ALTER TABLE analytics_validation_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_validation_hist_daily ENABLE ROW LEVEL SECURITY;
CREATE POLICY analytics_validation_daily_select ON analytics_validation_daily FOR SELECT
    USING ((SELECT user_has_permission('validations:read')));
CREATE POLICY analytics_validation_hist_daily_select ON analytics_validation_hist_daily
    FOR SELECT USING ((SELECT user_has_permission('validations:read')));

-- The daily rows of the given days, from their hourly rows.
CREATE FUNCTION analytics_validation_days(p_days timestamptz[]) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    DELETE FROM analytics_validation_daily WHERE bucket = ANY (p_days);
    DELETE FROM analytics_validation_hist_daily WHERE bucket = ANY (p_days);
    INSERT INTO analytics_validation_daily
    SELECT d.b, r.validation_type, r.validation_status, r.version, sum(r.runs), sum(r.score_n),
           sum(r.score_sum), sum(r.retried_n), sum(r.retries_sum)
    FROM unnest(p_days) AS d(b)
    JOIN analytics_validation_hourly r ON r.bucket >= d.b AND r.bucket < d.b + interval '1 day'
    GROUP BY 1, 2, 3, 4;
    INSERT INTO analytics_validation_hist_daily
    SELECT d.b, r.validation_type, r.kind, r.bin, sum(r.runs)
    FROM unnest(p_days) AS d(b)
    JOIN analytics_validation_hist_hourly r
      ON r.bucket >= d.b AND r.bucket < d.b + interval '1 day'
    GROUP BY 1, 2, 3, 4;
$$;

-- analytics_refresh() keeps its signature: the 022 body is renamed analytics_refresh_levels
-- and the new function runs it, then rebuilds the days whose hours it just rewrote.
ALTER FUNCTION analytics_refresh(int) RENAME TO analytics_refresh_levels;
REVOKE ALL ON FUNCTION analytics_refresh_levels(int) FROM PUBLIC, taskmaster_app;

CREATE FUNCTION analytics_refresh(p_hours int DEFAULT 3) RETURNS TABLE (rollup text, steps int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_days timestamptz[];
BEGIN
    RETURN QUERY SELECT * FROM analytics_refresh_levels(p_hours);
    IF p_hours IS NULL THEN
        TRUNCATE analytics_validation_daily, analytics_validation_hist_daily;
    END IF;
    v_days := ARRAY(SELECT DISTINCT analytics_bin(interval '1 day', bucket)
                    FROM analytics_validation_hourly WHERE refreshed_at = now());
    PERFORM analytics_validation_days(v_days);
    rollup := 'validations (daily)'; steps := cardinality(v_days); RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION analytics_validation_days(timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION analytics_refresh(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_refresh(int) TO taskmaster_app;

-- Existing hours get their days now.
SELECT analytics_validation_days(ARRAY(SELECT DISTINCT analytics_bin(interval '1 day', bucket)
                                       FROM analytics_validation_hourly));

CREATE FUNCTION analytics_reset_validation_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE analytics_validation_daily, analytics_validation_hist_daily;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_validation_results_analytics_reset_days AFTER TRUNCATE ON validation_results
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_reset_validation_days();

DROP INDEX idx_validation_results_score;
CREATE INDEX idx_validation_results_lowest ON validation_results (validation_score, created_at DESC)
    WHERE validation_score IS NOT NULL;
