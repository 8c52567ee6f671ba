ALTER TABLE vms DROP COLUMN reserved_until;
