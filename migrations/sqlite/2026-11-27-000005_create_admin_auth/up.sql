-- Secrets generated once and shared: the cookie-signing key, a generated admin password hash.
CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Signed-in admin sessions; only a hash of the session id is kept.
CREATE TABLE admin_sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE INDEX admin_sessions_expires_at_idx ON admin_sessions (expires_at);
