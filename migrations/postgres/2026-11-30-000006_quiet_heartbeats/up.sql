-- A write that changes nothing but a VM's heartbeat time (`last_heartbeat_at`,
-- `updated_at`) is no longer announced on `vm_updates`. Ten thousand agents reporting the
-- same status every 30 seconds would otherwise wake every listening allocator, and every
-- VM actor there, hundreds of times a second for nothing.
CREATE OR REPLACE FUNCTION lablink_notify_vm_change() RETURNS trigger AS $$
DECLARE
    changed_hostname TEXT;
BEGIN
    IF TG_OP = 'UPDATE'
        AND to_jsonb(OLD) - 'last_heartbeat_at' - 'updated_at'
            = to_jsonb(NEW) - 'last_heartbeat_at' - 'updated_at' THEN
        RETURN NULL;
    END IF;
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
