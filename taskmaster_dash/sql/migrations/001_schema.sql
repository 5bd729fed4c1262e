-- 001: the TaskMaster schema from the spec (tables, constraints, indexes, updated_at triggers).

-- uuid_generate_v4() is what the spec's defaults call. Use uuid-ossp's when it is installed,
-- otherwise a thin wrapper over the built-in gen_random_uuid() (PostgreSQL 13+).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'uuid_generate_v4') THEN
        CREATE FUNCTION uuid_generate_v4() RETURNS uuid
            LANGUAGE sql VOLATILE PARALLEL SAFE AS 'SELECT gen_random_uuid()';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TABLE tasks (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    title VARCHAR(255) NOT NULL,
    description TEXT,
    type VARCHAR(50) NOT NULL DEFAULT 'general',
    status VARCHAR(50) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    priority INTEGER DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    complexity_score INTEGER DEFAULT 5 CHECK (complexity_score BETWEEN 1 AND 10),
    affected_files JSONB DEFAULT '[]'::jsonb,
    requirements JSONB DEFAULT '[]'::jsonb,
    acceptance_criteria JSONB DEFAULT '[]'::jsonb,
    parent_task_id UUID REFERENCES tasks(id) ON DELETE SET NULL,
    assigned_to VARCHAR(255),
    tags JSONB DEFAULT '[]'::jsonb,
    estimated_hours DECIMAL(8,2) CHECK (estimated_hours >= 0),
    actual_hours DECIMAL(8,2) CHECK (actual_hours >= 0),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE,
    metadata JSONB DEFAULT '{}'::jsonb,
    CHECK (parent_task_id IS NULL OR parent_task_id <> id)
);

CREATE TABLE task_contexts (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    context_type VARCHAR(50) NOT NULL CHECK (context_type IN (
        'requirement', 'codebase', 'ai_interaction', 'validation', 'workflow', 'status_change',
        'completion', 'dependency_parent', 'dependency_child', 'error', 'performance')),
    context_data JSONB NOT NULL DEFAULT '{}'::jsonb,
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE task_dependencies (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    parent_task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    child_task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    dependency_type VARCHAR(50) NOT NULL DEFAULT 'blocks'
        CHECK (dependency_type IN ('blocks', 'depends_on', 'related')),
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    CHECK (parent_task_id <> child_task_id),
    UNIQUE (parent_task_id, child_task_id, dependency_type)
);

CREATE TABLE workflow_states (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    workflow_id VARCHAR(255) NOT NULL,
    task_id UUID REFERENCES tasks(id) ON DELETE SET NULL,
    step VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    result JSONB DEFAULT '{}'::jsonb,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    error_message TEXT,
    retry_count INTEGER DEFAULT 0 CHECK (retry_count >= 0),
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE validation_results (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    validation_type VARCHAR(50) NOT NULL CHECK (validation_type IN (
        'syntax', 'security', 'performance', 'style', 'testing', 'integration', 'deployment',
        'compliance', 'documentation')),
    validation_status VARCHAR(50) NOT NULL CHECK (validation_status IN (
        'pending', 'running', 'passed', 'failed', 'warning', 'skipped', 'error')),
    validation_score DECIMAL(5,2) CHECK (validation_score BETWEEN 0 AND 100),
    validation_data JSONB NOT NULL DEFAULT '{}'::jsonb,
    claude_code_version VARCHAR(50),
    validation_environment JSONB DEFAULT '{}'::jsonb,
    started_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE,
    execution_time_ms INTEGER CHECK (execution_time_ms >= 0),
    error_message TEXT,
    error_details JSONB,
    retry_count INTEGER DEFAULT 0 CHECK (retry_count BETWEEN 0 AND 10),
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE error_logs (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    task_id UUID REFERENCES tasks(id) ON DELETE SET NULL,
    validation_result_id UUID REFERENCES validation_results(id) ON DELETE SET NULL,
    workflow_state_id UUID REFERENCES workflow_states(id) ON DELETE SET NULL,
    error_code VARCHAR(50) NOT NULL,
    error_category VARCHAR(50) NOT NULL CHECK (error_category IN (
        'database', 'validation', 'workflow', 'integration', 'authentication', 'authorization',
        'network', 'configuration', 'business_logic', 'system')),
    error_severity VARCHAR(20) NOT NULL
        CHECK (error_severity IN ('critical', 'high', 'medium', 'low', 'info')),
    error_message TEXT NOT NULL,
    error_details JSONB DEFAULT '{}'::jsonb,
    stack_trace TEXT,
    context_data JSONB DEFAULT '{}'::jsonb,
    resolution_status VARCHAR(50) DEFAULT 'unresolved' CHECK (resolution_status IN (
        'unresolved', 'investigating', 'resolved', 'wont_fix', 'duplicate')),
    resolution_notes TEXT,
    resolved_at TIMESTAMP WITH TIME ZONE,
    resolved_by VARCHAR(255),
    occurrence_count INTEGER DEFAULT 1 CHECK (occurrence_count > 0),
    first_occurred_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_occurred_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    user_id VARCHAR(255),
    session_id VARCHAR(255),
    ip_address INET,
    user_agent TEXT,
    environment VARCHAR(50) DEFAULT 'production'
        CHECK (environment IN ('development', 'testing', 'staging', 'production')),
    service_name VARCHAR(100),
    service_version VARCHAR(50),
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE user_roles (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    role_name VARCHAR(50) NOT NULL UNIQUE CHECK (role_name ~ '^[a-z][a-z_]*$'),
    role_description TEXT,
    permissions JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(permissions) = 'array'),
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    username VARCHAR(100) NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{2,99}$'),
    email VARCHAR(255) NOT NULL UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    password_hash VARCHAR(255),
    role_id UUID NOT NULL REFERENCES user_roles(id),
    is_active BOOLEAN DEFAULT true,
    last_login_at TIMESTAMP WITH TIME ZONE,
    login_attempts INTEGER DEFAULT 0 CHECK (login_attempts BETWEEN 0 AND 10),
    locked_until TIMESTAMP WITH TIME ZONE,
    api_key_hash VARCHAR(255),
    api_key_expires_at TIMESTAMP WITH TIME ZONE,
    metadata JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Spec, "Audit Logging": who, when, operation, before/after values, IP, user agent, session.
-- entity_type accepts every audited table (the original's CHECK refused its own trigger's rows).
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    entity_type VARCHAR(50) NOT NULL,
    entity_id UUID,
    action VARCHAR(20) NOT NULL CHECK (action IN ('create', 'update', 'delete', 'status_change')),
    old_values JSONB,
    new_values JSONB,
    user_id UUID,
    username VARCHAR(100),
    session_id VARCHAR(255),
    ip_address INET,
    user_agent TEXT,
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    metadata JSONB DEFAULT '{}'::jsonb
);

-- The spec's indexes, one for every foreign key, and every column the dashboard filters on.
CREATE INDEX idx_tasks_status ON tasks(status);
CREATE INDEX idx_tasks_priority ON tasks(priority);
CREATE INDEX idx_tasks_assigned_to ON tasks(assigned_to);
CREATE INDEX idx_tasks_created_at ON tasks(created_at);
CREATE INDEX idx_tasks_updated_at ON tasks(updated_at);
CREATE INDEX idx_tasks_completed_at ON tasks(completed_at);
CREATE INDEX idx_tasks_type ON tasks(type);
CREATE INDEX idx_tasks_parent_task_id ON tasks(parent_task_id);
CREATE INDEX idx_tasks_tags ON tasks USING gin (tags);

CREATE INDEX idx_task_contexts_task_id ON task_contexts(task_id);
CREATE INDEX idx_task_contexts_type ON task_contexts(context_type);
CREATE INDEX idx_task_dependencies_child ON task_dependencies(child_task_id);

CREATE INDEX idx_workflow_states_task_id ON workflow_states(task_id);
CREATE INDEX idx_workflow_states_workflow_id ON workflow_states(workflow_id);
CREATE INDEX idx_workflow_states_status ON workflow_states(status);

CREATE INDEX idx_validation_results_task_id ON validation_results(task_id);
CREATE INDEX idx_validation_results_type_created ON validation_results(validation_type, created_at);
CREATE INDEX idx_validation_results_status ON validation_results(validation_status);
CREATE INDEX idx_validation_results_created_at ON validation_results(created_at);
CREATE INDEX idx_validation_results_version ON validation_results(claude_code_version);

CREATE INDEX idx_error_logs_task_id ON error_logs(task_id);
CREATE INDEX idx_error_logs_validation_result_id ON error_logs(validation_result_id);
CREATE INDEX idx_error_logs_workflow_state_id ON error_logs(workflow_state_id);
CREATE INDEX idx_error_logs_severity ON error_logs(error_severity);
CREATE INDEX idx_error_logs_category ON error_logs(error_category);
CREATE INDEX idx_error_logs_code ON error_logs(error_code);
CREATE INDEX idx_error_logs_service ON error_logs(service_name);
CREATE INDEX idx_error_logs_environment ON error_logs(environment);
CREATE INDEX idx_error_logs_status_last ON error_logs(resolution_status, last_occurred_at DESC);
CREATE INDEX idx_error_logs_last_occurred ON error_logs(last_occurred_at DESC);
CREATE INDEX idx_error_logs_first_occurred ON error_logs(first_occurred_at);
CREATE INDEX idx_error_logs_created_at ON error_logs(created_at);

CREATE INDEX idx_users_role_id ON users(role_id);
CREATE INDEX idx_audit_logs_entity ON audit_logs(entity_type, entity_id);
CREATE INDEX idx_audit_logs_timestamp ON audit_logs("timestamp" DESC);
CREATE INDEX idx_audit_logs_user_id ON audit_logs(user_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tasks', 'task_contexts', 'task_dependencies', 'workflow_states',
                             'validation_results', 'error_logs', 'user_roles', 'users'] LOOP
        EXECUTE format(
            'CREATE TRIGGER trg_%1$s_updated_at BEFORE UPDATE ON %1$I
             FOR EACH ROW EXECUTE FUNCTION set_updated_at()', t);
    END LOOP;
END
$$;

-- The spec's view, without the original's row multiplication from three LEFT JOINs.
-- security_invoker so the caller's RLS applies through the view.
CREATE VIEW active_tasks WITH (security_invoker = true) AS
SELECT
    t.*,
    (SELECT count(*) FROM task_contexts tc WHERE tc.task_id = t.id) AS context_count,
    (SELECT count(*) FROM task_dependencies d WHERE d.parent_task_id = t.id) AS child_task_count,
    (SELECT count(*) FROM task_dependencies d WHERE d.child_task_id = t.id) AS dependency_count
FROM tasks t
WHERE t.status IN ('pending', 'in_progress');
