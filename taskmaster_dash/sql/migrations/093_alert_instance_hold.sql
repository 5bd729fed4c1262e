-- 093: what the evaluator remembers per alert instance between evaluations.
-- `held`: the last evaluation held this firing instance's notifications because of an
-- acknowledgement; when the acknowledgement runs out and it still fires, it notifies again.
-- `cleared_at`: when the condition of a firing instance cleared, so it keeps firing for the
-- rule's keep_firing_for after that (NULL while the condition holds).
ALTER TABLE alert_states ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE alert_states ADD COLUMN cleared_at TIMESTAMP WITH TIME ZONE;
