DROP TABLE outbox_deliveries;
DROP TABLE outbox_events;
DROP TABLE vm_usage;
ALTER TABLE operations DROP COLUMN workshop_id;
DROP INDEX vms_by_workshop;
ALTER TABLE vms DROP COLUMN workshop_id;
DROP TABLE workshop_actions;
DROP TABLE workshop_roster;
DROP TABLE workshops;
