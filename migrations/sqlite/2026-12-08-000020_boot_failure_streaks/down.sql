ALTER TABLE vms DROP COLUMN replace_not_before;
DROP TABLE boot_failure_streaks;
