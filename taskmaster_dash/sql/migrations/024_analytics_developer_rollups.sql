-- 024: developers read the task rollups too, restricted IN THE DATABASE to their own rows.
--
-- A developer may see only tasks assigned to them (username or email) or unassigned (RLS on
-- tasks, 002). The task rollups keep the assignee ('' = unassigned) in their full-detail rows
-- (analytics_task_hourly level 0: by status, type, assignee; level 2: by status, assignee) and
-- in every analytics_open_tasks row, so those rows can be filtered the same way. The totals
-- over all assignees (levels 1 and 3, whose assignee is '') mix everyone's tasks: only users
-- who see every task may read them. Summing the rows a developer may read gives exactly what
-- the RLS-filtered tasks table gives, so their charts come from the rollups as well.

DROP POLICY analytics_task_hourly_select ON analytics_task_hourly;
CREATE POLICY analytics_task_hourly_select ON analytics_task_hourly FOR SELECT USING (
    (SELECT user_has_permission('tasks:read'))
    AND ((SELECT current_user_sees_all_tasks())
         OR (level IN (0, 2)
             AND (assignee = '' OR assignee IN (SELECT unnest(current_app_user_names()))))));

DROP POLICY analytics_open_tasks_select ON analytics_open_tasks;
CREATE POLICY analytics_open_tasks_select ON analytics_open_tasks FOR SELECT USING (
    (SELECT user_has_permission('tasks:read'))
    AND ((SELECT current_user_sees_all_tasks())
         OR assignee = '' OR assignee IN (SELECT unnest(current_app_user_names()))));

-- A developer's charts read one assignee's (and the unassigned) hourly rows.
CREATE INDEX idx_analytics_task_hourly_assignee
    ON analytics_task_hourly (level, assignee, bucket);
