-- 097: validation runs per 5 minutes and type, kept by triggers (issue 15: alert rules on the
-- validation failure share or mean score read a window's whole 5-minute steps from here and
-- at most 5 minutes of raw rows at each edge; with the hourly rollup alone every rule read up
-- to two hours of raw runs, which at a million tasks made one evaluation cycle take seconds).
--
-- Kept like 095's headline counts: statement-level triggers with transition tables append one
-- delta row per (bucket, type) a statement changed, so writers never wait on a counter row; a
-- reader sums the rows of a bucket. validation_counts_compact() (run by the rollup refresher
-- with the headline counts) folds the keys that have new delta rows into one row each. Always
-- current, unlike the rollups: nothing is read raw after them.

CREATE TABLE validation_counts_5m (
    bucket TIMESTAMPTZ NOT NULL,  -- analytics_bin(interval '5 minutes', created_at)
    validation_type TEXT NOT NULL,
    runs BIGINT NOT NULL,
    failed BIGINT NOT NULL,  -- validation_status failed or error
    score_n BIGINT NOT NULL,
    score_sum NUMERIC NOT NULL,
    folded BOOLEAN NOT NULL DEFAULT false  -- false: a delta the next compaction folds
);
CREATE INDEX idx_validation_counts_5m_bucket ON validation_counts_5m (bucket);
CREATE INDEX idx_validation_counts_5m_deltas ON validation_counts_5m (bucket, validation_type)
    WHERE NOT folded;

ALTER TABLE validation_counts_5m ENABLE ROW LEVEL SECURITY;
CREATE POLICY validation_counts_5m_select ON validation_counts_5m FOR SELECT
    USING ((SELECT user_has_permission('validations:read')));
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON validation_counts_5m FROM taskmaster_app;

CREATE FUNCTION validation_counts_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    row_sums text := 'analytics_bin(interval ''5 minutes'', created_at), validation_type, %s,
                      %s * (validation_status IN (''failed'', ''error''))::int,
                      %s * (validation_score IS NOT NULL)::int,
                      %s * COALESCE(validation_score, 0)';
    plus text := format(row_sums, 1, 1, 1, 1) || ' FROM new_rows';
    minus text := format(row_sums, -1, -1, -1, -1) || ' FROM old_rows';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM headline_counts_lock();
        DELETE FROM validation_counts_5m;
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO validation_counts_5m (bucket, validation_type, runs, failed, score_n,
                                           score_sum)
         SELECT bucket, validation_type, sum(runs), sum(failed), sum(score_n), sum(score_sum)
         FROM (SELECT %s) AS c (bucket, validation_type, runs, failed, score_n, score_sum)
         GROUP BY 1, 2
         HAVING sum(runs) <> 0 OR sum(failed) <> 0 OR sum(score_n) <> 0 OR sum(score_sum) <> 0',
        CASE TG_OP
            WHEN 'INSERT' THEN plus
            WHEN 'DELETE' THEN minus
            ELSE plus || ' UNION ALL SELECT ' || minus END);
    RETURN NULL;
END
$$;

CREATE TRIGGER trg_validation_results_counts_insert AFTER INSERT ON validation_results
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION validation_counts_count();
CREATE TRIGGER trg_validation_results_counts_update AFTER UPDATE ON validation_results
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION validation_counts_count();
CREATE TRIGGER trg_validation_results_counts_delete AFTER DELETE ON validation_results
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION validation_counts_count();
CREATE TRIGGER trg_validation_results_counts_truncate AFTER TRUNCATE ON validation_results
    FOR EACH STATEMENT EXECUTE FUNCTION validation_counts_count();
-- also for the seed's bulk loads (session_replication_role = replica), as in 095
ALTER TABLE validation_results ENABLE ALWAYS TRIGGER trg_validation_results_counts_insert,
    ENABLE ALWAYS TRIGGER trg_validation_results_counts_update,
    ENABLE ALWAYS TRIGGER trg_validation_results_counts_delete,
    ENABLE ALWAYS TRIGGER trg_validation_results_counts_truncate;

-- Fold each key that has delta rows into one row (a key that sums to nothing disappears).
-- Rows committed while it runs are not in its snapshot: they stay, and the next one folds them.
CREATE FUNCTION validation_counts_compact() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM headline_counts_lock();
    WITH keys AS (SELECT DISTINCT bucket, validation_type FROM validation_counts_5m
                  WHERE NOT folded),
    gone AS (DELETE FROM validation_counts_5m v USING keys k
             WHERE v.bucket = k.bucket AND v.validation_type = k.validation_type
             RETURNING v.bucket, v.validation_type, v.runs, v.failed, v.score_n, v.score_sum)
    INSERT INTO validation_counts_5m
    SELECT bucket, validation_type, sum(runs), sum(failed), sum(score_n), sum(score_sum), true
    FROM gone GROUP BY 1, 2
    HAVING sum(runs) <> 0 OR sum(failed) <> 0 OR sum(score_n) <> 0 OR sum(score_sum) <> 0;
END
$$;

REVOKE ALL ON FUNCTION validation_counts_count() FROM PUBLIC;
REVOKE ALL ON FUNCTION validation_counts_compact() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION validation_counts_compact() TO taskmaster_app;

-- The runs already there (the triggers' lock keeps writers out until this commits).
INSERT INTO validation_counts_5m
SELECT analytics_bin(interval '5 minutes', created_at), validation_type, count(*),
       count(*) FILTER (WHERE validation_status IN ('failed', 'error')),
       count(validation_score), COALESCE(sum(validation_score), 0), true
FROM validation_results GROUP BY 1, 2;
