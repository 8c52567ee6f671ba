-- Append-only: one row per log line, so concurrent writers never overwrite each other.
CREATE TABLE vm_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    hostname    TEXT NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    line        TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX vm_logs_hostname_id_idx ON vm_logs (hostname, id);
