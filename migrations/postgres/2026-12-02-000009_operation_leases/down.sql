ALTER TABLE operations DROP COLUMN lease_expires_at;
ALTER TABLE operations DROP COLUMN lease_owner;
