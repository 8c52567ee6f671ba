-- Enrollment tokens let a lab's own machines join: an admin makes one, it is shown once,
-- and only its SHA-256 is kept. A use mints the VM's own token.
CREATE TABLE enrollment_tokens (
    id          BIGSERIAL PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    -- NULL: never expires.
    expires_at  TIMESTAMP,
    -- NULL: any number of uses.
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  TIMESTAMP
);

-- The VMs that joined by themselves rather than being created by a provider: through an
-- enrollment token, or token-less under the legacy switch (token_id NULL). They are counted
-- against `provider.max_vms` apart from the provider's own, so they can never block a real
-- creation.
CREATE TABLE vm_enrollments (
    hostname    TEXT PRIMARY KEY REFERENCES vms (hostname) ON DELETE CASCADE,
    token_id    BIGINT REFERENCES enrollment_tokens (id) ON DELETE SET NULL,
    enrolled_at TIMESTAMP NOT NULL
);
