-- Provisioning runs (create, destroy), written before they start.
CREATE TABLE operations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind            TEXT NOT NULL,
    requested_count INTEGER,
    targets         TEXT,
    state           TEXT NOT NULL DEFAULT 'queued',
    requested_by    TEXT NOT NULL,
    error           TEXT,
    output_tail     TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP
);

CREATE INDEX operations_unfinished_idx ON operations (id) WHERE finished_at IS NULL;
