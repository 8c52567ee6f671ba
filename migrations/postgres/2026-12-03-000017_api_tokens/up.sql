-- Named tokens with which scripts and the `lablink` CLI call the admin API. Only the SHA-256
-- of a token is kept; the token itself is shown once, when it is made.
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    -- `read-only`: safe requests (GET) only; `admin`: everything the admin may do.
    scope        TEXT NOT NULL CHECK (scope IN ('read-only', 'admin')),
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    -- NULL: never expires.
    expires_at   TIMESTAMP,
    revoked_at   TIMESTAMP,
    -- Refreshed at most once a minute, so a busy script does not write on every request.
    last_used_at TIMESTAMP
);
