DROP TRIGGER IF EXISTS vms_notify_change ON vms;
DROP FUNCTION IF EXISTS lablink_notify_vm_change();
DROP TABLE vms;
