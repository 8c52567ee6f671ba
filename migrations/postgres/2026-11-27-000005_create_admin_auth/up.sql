-- Secrets the allocator generates once and every allocator process shares: the key that
-- signs session cookies, and the admin password's argon2 hash when none is configured.
CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

-- Signed-in admin sessions. Only a hash of the session id is kept; logging out deletes
-- the row, so a copied cookie stops working at once.
CREATE TABLE admin_sessions (
    id_hash    TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE INDEX admin_sessions_expires_at_idx ON admin_sessions (expires_at);
