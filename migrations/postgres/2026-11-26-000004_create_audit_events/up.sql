-- Who did what to which target, when. Append-only.
CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    detail      TEXT
);

CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at, id);
