-- Creations sent with `Idempotency-Key`, remembered with their answers for a day.
CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    route        TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    answered_at  TIMESTAMP,
    status       INTEGER,
    location     TEXT,
    body         TEXT,
    secret_withheld BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
