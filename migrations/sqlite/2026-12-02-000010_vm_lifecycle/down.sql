ALTER TABLE vms DROP COLUMN next_action;
ALTER TABLE vms DROP COLUMN recovery_attempts;
ALTER TABLE vms DROP COLUMN state_since;
ALTER TABLE vms DROP COLUMN state_reason;
ALTER TABLE vms DROP COLUMN state;
