ALTER TABLE vms DROP COLUMN session_notice;
ALTER TABLE vms DROP COLUMN last_active_at;
ALTER TABLE workshops DROP COLUMN max_session_secs;
ALTER TABLE workshops DROP COLUMN idle_warning_secs;
ALTER TABLE workshops DROP COLUMN idle_release_secs;
