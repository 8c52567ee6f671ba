-- Provisioning runs (create, destroy). A row is written before the run starts, so a run
-- interrupted by a crash is found and marked failed at the next start.
CREATE TABLE operations (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    -- For `create`: how many VMs were asked for.
    requested_count INTEGER,
    -- For `destroy`: the hostnames asked for, as a JSON array.
    targets         TEXT,
    state           TEXT NOT NULL DEFAULT 'queued',
    requested_by    TEXT NOT NULL,
    error           TEXT,
    output_tail     TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP
);

CREATE INDEX operations_unfinished_idx ON operations (id) WHERE finished_at IS NULL;
