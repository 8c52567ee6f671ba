ALTER TABLE workshops DROP COLUMN desktop_mode;
