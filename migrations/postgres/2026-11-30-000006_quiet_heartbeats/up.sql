-- A write that changes nothing but a VM's heartbeat time (`last_heartbeat_at`,
-- `updated_at`) is no longer announced on `vm_updates`. Ten thousand agents reporting the
-- same status every 30 seconds would otherwise wake every listening allocator, and every
-- VM actor there, hundreds of times a second for nothing.
--
-- Updates get a trigger of their own whose WHEN clause compares the columns that matter, so
-- a heartbeat does not even call the notifying function. A column added to `vms` later must
-- be added to this list, or changes to it alone will not be announced.
DROP TRIGGER vms_notify_change ON vms;

CREATE TRIGGER vms_notify_change
AFTER INSERT OR DELETE ON vms
FOR EACH ROW EXECUTE FUNCTION lablink_notify_vm_change();

CREATE TRIGGER vms_notify_update
AFTER UPDATE ON vms
FOR EACH ROW
WHEN ((OLD.hostname, OLD.status, OLD.user_email, OLD.crd_command, OLD.pin,
       OLD.assignment_seq, OLD.in_use, OLD.gpu_health, OLD.token_hash, OLD.assigned_at,
       OLD.created_at)
      IS DISTINCT FROM
      (NEW.hostname, NEW.status, NEW.user_email, NEW.crd_command, NEW.pin,
       NEW.assignment_seq, NEW.in_use, NEW.gpu_health, NEW.token_hash, NEW.assigned_at,
       NEW.created_at))
EXECUTE FUNCTION lablink_notify_vm_change();
