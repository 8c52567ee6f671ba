-- Announce every write again, heartbeats included.
DROP TRIGGER vms_notify_update ON vms;
DROP TRIGGER vms_notify_change ON vms;

CREATE TRIGGER vms_notify_change
AFTER INSERT OR UPDATE OR DELETE ON vms
FOR EACH ROW EXECUTE FUNCTION lablink_notify_vm_change();
