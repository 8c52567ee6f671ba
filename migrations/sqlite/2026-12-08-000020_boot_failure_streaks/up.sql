-- Replacements of VMs that never became ready, counted in a row per set of provider settings
-- (`settings_key`: `workshop:<id>`, or `default` for VMs of no workshop), so that an image or
-- agent that can never boot is not replaced forever. Each such replacement waits longer than
-- the one before; after `lifecycle.max_failed_boot_replacements` the next is not made, and
-- `gave_up_at` says so (the dashboard's banner). A VM of those settings that becomes ready
-- deletes the row: the count starts again.
CREATE TABLE boot_failure_streaks (
    settings_key   TEXT PRIMARY KEY,
    replacements   INTEGER NOT NULL,
    last_replaced_at TIMESTAMP NOT NULL,
    gave_up_at     TIMESTAMP,
    reason         TEXT NOT NULL
);

-- A VM that failed to boot waits until this time before it is replaced (the back-off above).
ALTER TABLE vms ADD COLUMN replace_not_before TIMESTAMP;
