-- Each VM's lifecycle state as its supervising actor last decided it: what a lab reads at a
-- glance (booting, ready, assigned, in_use, unreachable, boot_failed, quarantined,
-- recovering, replacing, destroyed), why, since when, how many recoveries in a row have
-- been tried, and what happens next. Every allocator's actor for the VM writes it with a
-- compare-and-set on the state it read, so the first to notice a fault is the only one to
-- act on it.
ALTER TABLE vms ADD COLUMN state TEXT NOT NULL DEFAULT 'booting';
ALTER TABLE vms ADD COLUMN state_reason TEXT NOT NULL DEFAULT 'created';
ALTER TABLE vms ADD COLUMN state_since TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc');
ALTER TABLE vms ADD COLUMN recovery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN next_action TEXT;

-- The trigger's list of announced columns gains the lifecycle columns (see migration
-- 000006: a column missing here is not announced when it alone changes).
DROP TRIGGER vms_notify_update ON vms;
CREATE TRIGGER vms_notify_update
AFTER UPDATE ON vms
FOR EACH ROW
WHEN ((OLD.hostname, OLD.status, OLD.user_email, OLD.crd_command, OLD.pin,
       OLD.assignment_seq, OLD.in_use, OLD.gpu_health, OLD.token_hash, OLD.assigned_at,
       OLD.created_at, OLD.state, OLD.state_reason, OLD.recovery_attempts, OLD.next_action)
      IS DISTINCT FROM
      (NEW.hostname, NEW.status, NEW.user_email, NEW.crd_command, NEW.pin,
       NEW.assignment_seq, NEW.in_use, NEW.gpu_health, NEW.token_hash, NEW.assigned_at,
       NEW.created_at, NEW.state, NEW.state_reason, NEW.recovery_attempts, NEW.next_action))
EXECUTE FUNCTION lablink_notify_vm_change();
