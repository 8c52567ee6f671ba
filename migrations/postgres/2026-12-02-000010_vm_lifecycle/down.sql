DROP TRIGGER vms_notify_update ON vms;
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
ALTER TABLE vms DROP COLUMN next_action;
ALTER TABLE vms DROP COLUMN recovery_attempts;
ALTER TABLE vms DROP COLUMN state_since;
ALTER TABLE vms DROP COLUMN state_reason;
ALTER TABLE vms DROP COLUMN state;
