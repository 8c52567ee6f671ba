-- A creation sent with `Idempotency-Key` is remembered with its answer, so a retried request
-- (a lost answer, a timeout) gets the first answer again instead of creating twice. A key is
-- claimed before the work starts (`answered_at` NULL): a second request with it meanwhile is
-- told to wait, never run. Keys belong to whoever sent them and are forgotten after a day.
CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    -- `POST /api/admin/vms`: the same key on another route is a mistake, not a retry.
    route        TEXT NOT NULL,
    -- SHA-256 of the body: the same key with another body is refused.
    request_hash TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    answered_at  TIMESTAMP,
    status       INTEGER,
    location     TEXT,
    body         TEXT,
    -- The answer carried a secret (a new token), which is never kept: a retry is told so.
    secret_withheld BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
