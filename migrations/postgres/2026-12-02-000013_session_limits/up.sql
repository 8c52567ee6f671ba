-- Per-participant limits of a workshop: a session idle (neither the research software nor
-- the desktop used) this long is warned, then released; a session is released after at most
-- max_session_secs. NULL: no such limit.
ALTER TABLE workshops ADD COLUMN idle_release_secs INTEGER;
ALTER TABLE workshops ADD COLUMN idle_warning_secs INTEGER NOT NULL DEFAULT 300;
ALTER TABLE workshops ADD COLUMN max_session_secs INTEGER;
-- When the participant last used the VM (an agent's activity report, or an extension), and
-- the warning the participant and the desktop are shown now.
ALTER TABLE vms ADD COLUMN last_active_at TIMESTAMP;
ALTER TABLE vms ADD COLUMN session_notice TEXT;
