-- The browser that claimed a VM may see the assignment again (SHA-256 of its key).
ALTER TABLE vms ADD COLUMN claimed_by TEXT;

-- Sign-in nonces already used, so a sign-in form cannot be replayed.
CREATE TABLE used_login_nonces (
    nonce_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
