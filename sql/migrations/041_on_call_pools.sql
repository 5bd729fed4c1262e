-- 041: on-call staff may open the Pools page (pools:read). Pool exhaustion, slow queries and
-- waiting locks are what an on-call engineer investigates during an incident (the spec's
-- troubleshooting guide). The spec's roles (admin, developer, viewer, api_client) keep exactly
-- the spec's permissions; admins see the page through '*'.
UPDATE user_roles
SET permissions = permissions || '["pools:read"]'::jsonb
WHERE role_name = 'on_call' AND NOT permissions ? 'pools:read';
