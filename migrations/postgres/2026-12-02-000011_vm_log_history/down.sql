DROP TABLE vm_log_totals;
ALTER TABLE vm_logs
    DROP COLUMN source,
    DROP COLUMN logged_at,
    DROP COLUMN bytes,
    DROP COLUMN is_error;
