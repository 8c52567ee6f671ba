-- Each VM's lifecycle state as its supervising actor last decided it (see the PostgreSQL
-- migration of this name).
ALTER TABLE vms ADD COLUMN state TEXT NOT NULL DEFAULT 'booting';
ALTER TABLE vms ADD COLUMN state_reason TEXT NOT NULL DEFAULT 'created';
ALTER TABLE vms ADD COLUMN state_since TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE vms SET state_since = created_at;
ALTER TABLE vms ADD COLUMN recovery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN next_action TEXT;
