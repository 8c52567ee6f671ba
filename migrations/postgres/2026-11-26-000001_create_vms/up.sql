-- One row per lab VM. Timestamps are UTC (`timestamp without time zone`, as on SQLite).
CREATE TABLE vms (
    hostname          TEXT PRIMARY KEY,
    status            TEXT NOT NULL DEFAULT 'initializing',
    user_email        TEXT,
    crd_command       TEXT,
    pin               TEXT,
    -- Counts this VM's assignments; identifies the current one to its agent, so an agent
    -- that already holds assignment N can wait for the next one.
    assignment_seq    BIGINT NOT NULL DEFAULT 0,
    in_use            BOOLEAN NOT NULL DEFAULT FALSE,
    gpu_health        TEXT,
    -- Only a hash of the VM's own bearer token is kept; the token itself is shown once.
    token_hash        TEXT,
    assigned_at       TIMESTAMP,
    last_heartbeat_at TIMESTAMP,
    created_at        TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at        TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

-- A researcher holds at most one VM: asking again must return the same one.
CREATE UNIQUE INDEX vms_user_email_key ON vms (user_email) WHERE user_email IS NOT NULL;
-- Free VMs are what assignment scans for.
CREATE INDEX vms_free_idx ON vms (status, hostname) WHERE user_email IS NULL;

-- Every change to a VM row is announced on `vm_updates` so that every allocator process
-- sharing this database can wake the agents waiting on that VM. The payload names the VM
-- only: listeners re-read the row, and no PIN or command ever travels on the channel.
CREATE FUNCTION lablink_notify_vm_change() RETURNS trigger AS $$
DECLARE
    changed_hostname TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed_hostname := OLD.hostname;
    ELSE
        changed_hostname := NEW.hostname;
    END IF;
    PERFORM pg_notify(
        'vm_updates',
        json_build_object('hostname', changed_hostname, 'op', lower(TG_OP))::text
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER vms_notify_change
AFTER INSERT OR UPDATE OR DELETE ON vms
FOR EACH ROW EXECUTE FUNCTION lablink_notify_vm_change();
