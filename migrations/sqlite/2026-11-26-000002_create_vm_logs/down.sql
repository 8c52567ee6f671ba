DROP TABLE vm_logs;
