-- Enrollment tokens let a lab's own machines join; only their SHA-256 is kept.
CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP,
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  TIMESTAMP
);

-- VMs that joined by themselves (enrollment token, or legacy token-less: token_id NULL).
CREATE TABLE vm_enrollments (
    hostname    TEXT PRIMARY KEY NOT NULL REFERENCES vms (hostname) ON DELETE CASCADE,
    token_id    BIGINT REFERENCES enrollment_tokens (id) ON DELETE SET NULL,
    enrolled_at TIMESTAMP NOT NULL
);
