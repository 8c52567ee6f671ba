-- Announce every write again, heartbeats included.
CREATE OR REPLACE FUNCTION lablink_notify_vm_change() RETURNS trigger AS $$
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
