DROP TABLE vm_log_totals;
ALTER TABLE vm_logs DROP COLUMN is_error;
ALTER TABLE vm_logs DROP COLUMN bytes;
ALTER TABLE vm_logs DROP COLUMN logged_at;
ALTER TABLE vm_logs DROP COLUMN source;
