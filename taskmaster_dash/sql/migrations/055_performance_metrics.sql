-- 055: performance_metrics, the metric series the original TaskMaster API writes. An adopted
-- database already has it (same shape, kept with every row); a fresh one gets it empty.
CREATE TABLE IF NOT EXISTS performance_metrics (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    metric_type VARCHAR(50) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    metric_value DECIMAL(15,6) NOT NULL,
    tags JSONB DEFAULT '{}'::jsonb,
    "timestamp" TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    CONSTRAINT performance_metrics_type_check
        CHECK (metric_type IN ('query', 'task', 'workflow', 'system'))
);
CREATE INDEX IF NOT EXISTS idx_performance_metrics_type_name
    ON performance_metrics(metric_type, metric_name);
CREATE INDEX IF NOT EXISTS idx_performance_metrics_timestamp ON performance_metrics("timestamp");

-- Written by the original services (as the owner); read on /pools by whoever may see pools.
ALTER TABLE performance_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY performance_metrics_select ON performance_metrics FOR SELECT
    USING ((SELECT user_has_permission('pools:read')));
REVOKE ALL ON performance_metrics FROM taskmaster_app;
GRANT SELECT ON performance_metrics TO taskmaster_app;
