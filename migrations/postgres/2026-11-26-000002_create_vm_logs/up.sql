-- Append-only: one row per log line, so concurrent writers never overwrite each other
-- (the original kept all lines in one text column, rewritten on every post).
CREATE TABLE vm_logs (
    id          BIGSERIAL PRIMARY KEY,
    hostname    TEXT NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    line        TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

CREATE INDEX vm_logs_hostname_id_idx ON vm_logs (hostname, id);
