-- The browser that claimed a VM may see the assignment again: only the SHA-256 of its key
-- is kept, and releasing the VM clears it.
ALTER TABLE vms ADD COLUMN claimed_by TEXT;

-- Sign-in nonces already used, so a sign-in form cannot be replayed; rows are forgotten
-- once the nonce would have expired anyway.
CREATE TABLE used_login_nonces (
    nonce_hash TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
