-- One row per lab VM. Timestamps are UTC.
CREATE TABLE vms (
    hostname          TEXT PRIMARY KEY NOT NULL,
    status            TEXT NOT NULL DEFAULT 'initializing',
    user_email        TEXT,
    crd_command       TEXT,
    pin               TEXT,
    -- Counts this VM's assignments; identifies the current one to its agent, so an agent
    -- that already holds assignment N can wait for the next one.
    assignment_seq    BIGINT NOT NULL DEFAULT 0,
    in_use            BOOLEAN NOT NULL DEFAULT 0,
    gpu_health        TEXT,
    -- Only a hash of the VM's own bearer token is kept; the token itself is shown once.
    token_hash        TEXT,
    assigned_at       TIMESTAMP,
    last_heartbeat_at TIMESTAMP,
    created_at        TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at        TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- A researcher holds at most one VM: asking again must return the same one.
CREATE UNIQUE INDEX vms_user_email_key ON vms (user_email) WHERE user_email IS NOT NULL;
-- Free VMs are what assignment scans for.
CREATE INDEX vms_free_idx ON vms (status, hostname) WHERE user_email IS NULL;
