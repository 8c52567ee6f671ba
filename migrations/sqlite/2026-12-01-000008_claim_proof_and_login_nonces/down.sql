DROP TABLE used_login_nonces;
ALTER TABLE vms DROP COLUMN claimed_by;
