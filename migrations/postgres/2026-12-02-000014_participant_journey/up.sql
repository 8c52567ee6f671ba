-- One row per participant's session (an assignment of a VM): when each step of the journey
-- happened, as the allocator saw it, and the usage figures the VM's agent reports in its
-- heartbeats. Kept after the session ends, for the instructor's funnel and the exports.
CREATE TABLE participant_sessions (
    id BIGSERIAL PRIMARY KEY,
    hostname TEXT NOT NULL,
    assignment_seq BIGINT NOT NULL,
    email TEXT NOT NULL,
    workshop_id BIGINT REFERENCES workshops (id) ON DELETE SET NULL,
    claimed_at TIMESTAMP NOT NULL,
    command_received_at TIMESTAMP,
    desktop_up_at TIMESTAMP,
    software_first_used_at TIMESTAMP,
    ended_at TIMESTAMP,
    -- Why the session ended (released, idle, the VM broke, the VM was destroyed).
    end_reason TEXT,
    software_secs BIGINT NOT NULL DEFAULT 0,
    -- Whether the agent could read a GPU (NVML); the GPU figures mean nothing otherwise.
    gpu_measured BOOLEAN NOT NULL DEFAULT FALSE,
    gpu_active_secs BIGINT NOT NULL DEFAULT 0,
    gpu_peak_utilization INTEGER NOT NULL DEFAULT 0,
    gpu_peak_memory_mib BIGINT NOT NULL DEFAULT 0,
    last_activity_at TIMESTAMP,
    -- When a step was last recorded: the live views look for changes by it.
    step_changed_at TIMESTAMP NOT NULL
);
-- At most one open session per VM name; heartbeats find it by this index.
CREATE UNIQUE INDEX participant_sessions_open ON participant_sessions (hostname)
    WHERE ended_at IS NULL;
CREATE INDEX participant_sessions_by_workshop ON participant_sessions (workshop_id, claimed_at);
CREATE INDEX participant_sessions_by_claim ON participant_sessions (claimed_at);
