-- Workshops (see the PostgreSQL migration of this name): the event a lab runs a class on. Times are UTC; `utc_offset` is the offset the
-- admin gave with the start time, used to show times as the lab reads them, and
-- `time_zone` an optional name for it ("America/Los_Angeles").
CREATE TABLE workshops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    utc_offset_secs INTEGER NOT NULL DEFAULT 0,
    time_zone TEXT,
    headcount INTEGER NOT NULL,
    spare_vms INTEGER NOT NULL DEFAULT 0,
    warmup_lead_secs INTEGER NOT NULL,
    -- Provider variables for this workshop's VMs (JSON object of strings).
    vm_settings TEXT NOT NULL DEFAULT '{}',
    -- open, invite or roster.
    admission TEXT NOT NULL DEFAULT 'open',
    invite_code_hash TEXT,
    -- JSON array of minutes before the end at which participants and admins are warned.
    warning_minutes TEXT NOT NULL DEFAULT '[30,5]',
    keep_after_end_secs INTEGER NOT NULL DEFAULT 0,
    price_per_vm_hour_micros BIGINT NOT NULL DEFAULT 0,
    spend_cap_micros BIGINT,
    teardown_at_cap BOOLEAN NOT NULL DEFAULT FALSE,
    -- scheduled, warming_up, open, ended, torn_down.
    state TEXT NOT NULL DEFAULT 'scheduled',
    -- none, warned (80 %) or reached (100 %).
    spend_alert TEXT NOT NULL DEFAULT 'none',
    -- The warning participants see now, if any.
    notice TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE workshop_roster (
    workshop_id BIGINT NOT NULL REFERENCES workshops (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    PRIMARY KEY (workshop_id, email)
);

-- Planned actions (warm-up batches, opening, warnings, the end, teardown): durable jobs that
-- one allocator at a time takes under a lease. Each records what was decided and why.
CREATE TABLE workshop_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workshop_id BIGINT NOT NULL REFERENCES workshops (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    -- warm-up: how many VMs the workshop should have once this batch is made;
    -- warning: minutes before the end.
    amount INTEGER NOT NULL DEFAULT 0,
    -- planned, done, skipped, cancelled or failed.
    state TEXT NOT NULL DEFAULT 'planned',
    outcome TEXT,
    done_at TIMESTAMP,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP
);
CREATE INDEX workshop_actions_planned ON workshop_actions (due_at) WHERE state = 'planned';
CREATE INDEX workshop_actions_by_workshop ON workshop_actions (workshop_id, due_at);

ALTER TABLE vms ADD COLUMN workshop_id BIGINT REFERENCES workshops (id);
CREATE INDEX vms_by_workshop ON vms (workshop_id);
ALTER TABLE operations ADD COLUMN workshop_id BIGINT REFERENCES workshops (id);

-- Every VM's life, kept after the VM is gone: measured boot times and VM-hours (spend).
CREATE TABLE vm_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hostname TEXT NOT NULL,
    workshop_id BIGINT REFERENCES workshops (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    ready_at TIMESTAMP,
    destroyed_at TIMESTAMP
);
CREATE INDEX vm_usage_live ON vm_usage (hostname) WHERE destroyed_at IS NULL;
CREATE INDEX vm_usage_by_workshop ON vm_usage (workshop_id);

-- The outbox: an event is written in the same transaction as the change that causes it, with
-- one delivery per configured channel; deliveries are sent afterwards, under a lease, with
-- retries. `delivery_key` is what a receiver deduplicates on.
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE outbox_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    delivery_key TEXT NOT NULL UNIQUE,
    -- pending, delivered or failed (gave up).
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    delivered_at TIMESTAMP,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP
);
CREATE INDEX outbox_deliveries_pending ON outbox_deliveries (next_attempt_at)
    WHERE state = 'pending';
