-- Each line says where on the VM it came from and when it was logged there, how many bytes
-- it holds and whether it reads as an error; the per-VM totals let retention trim the
-- oldest lines of one VM on write, by its (hostname, id) index, never scanning the table,
-- and let a batch that is sent twice be stored once.
ALTER TABLE vm_logs ADD COLUMN source TEXT NOT NULL DEFAULT 'vm';
ALTER TABLE vm_logs ADD COLUMN logged_at TIMESTAMP;
ALTER TABLE vm_logs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vm_logs ADD COLUMN is_error BOOLEAN NOT NULL DEFAULT 0;

UPDATE vm_logs SET bytes = length(CAST(line AS BLOB));

CREATE TABLE vm_log_totals (
    hostname TEXT PRIMARY KEY NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    lines    BIGINT NOT NULL,
    bytes    BIGINT NOT NULL,
    -- The agent's spool and the last line it numbered that is stored: a batch sent again
    -- (its answer lost) is not stored twice.
    stream   TEXT,
    last_seq BIGINT,
    -- The sources its lines came from, one per line of text, for the log page's filter.
    sources  TEXT NOT NULL DEFAULT ''
);

INSERT INTO vm_log_totals (hostname, lines, bytes, sources)
SELECT hostname, count(*), coalesce(sum(bytes), 0), 'vm' FROM vm_logs GROUP BY hostname;
