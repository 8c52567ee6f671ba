//! Diesel table definitions, kept by hand in step with `migrations/postgres` and
//! `migrations/sqlite` (the tests in `tests/` apply those migrations and query every column).

diesel::table! {
    /// One row per lab VM.
    vms (hostname) {
        hostname -> Text,
        status -> Text,
        user_email -> Nullable<Text>,
        crd_command -> Nullable<Text>,
        pin -> Nullable<Text>,
        assignment_seq -> BigInt,
        in_use -> Bool,
        gpu_health -> Nullable<Text>,
        token_hash -> Nullable<Text>,
        assigned_at -> Nullable<Timestamp>,
        last_heartbeat_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        state -> Text,
        state_reason -> Text,
        state_since -> Timestamp,
        recovery_attempts -> Integer,
        next_action -> Nullable<Text>,
        workshop_id -> Nullable<BigInt>,
        last_active_at -> Nullable<Timestamp>,
        session_notice -> Nullable<Text>,
        reserved_until -> Nullable<Timestamp>,
        replace_not_before -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Replacements in a row of VMs that never became ready, per set of provider settings.
    boot_failure_streaks (settings_key) {
        settings_key -> Text,
        replacements -> Integer,
        last_replaced_at -> Timestamp,
        gave_up_at -> Nullable<Timestamp>,
        reason -> Text,
    }
}

diesel::table! {
    /// Append-only VM log lines.
    vm_logs (id) {
        id -> BigInt,
        hostname -> Text,
        line -> Text,
        received_at -> Timestamp,
        source -> Text,
        logged_at -> Nullable<Timestamp>,
        bytes -> Integer,
        is_error -> Bool,
    }
}

diesel::table! {
    /// Each VM's kept log lines and bytes, for retention on write.
    vm_log_totals (hostname) {
        hostname -> Text,
        lines -> BigInt,
        bytes -> BigInt,
        stream -> Nullable<Text>,
        last_seq -> Nullable<BigInt>,
        sources -> Text,
    }
}

diesel::table! {
    /// Provisioning runs.
    operations (id) {
        id -> BigInt,
        kind -> Text,
        requested_count -> Nullable<Integer>,
        targets -> Nullable<Text>,
        state -> Text,
        requested_by -> Text,
        error -> Nullable<Text>,
        output_tail -> Text,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        workshop_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Who did what to which target, when.
    audit_events (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    /// Secrets generated once and shared by every allocator process.
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Signed-in admin sessions (hashed ids).
    admin_sessions (id_hash) {
        id_hash -> Text,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Admin-made tokens with which a lab's own machines enroll (hashed).
    enrollment_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        label -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        max_uses -> Nullable<Integer>,
        uses -> Integer,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// VMs that joined by themselves rather than through a provider.
    vm_enrollments (hostname) {
        hostname -> Text,
        token_id -> Nullable<BigInt>,
        enrolled_at -> Timestamp,
    }
}

diesel::table! {
    /// Sign-in nonces already used (hashed), until they would have expired.
    used_login_nonces (nonce_hash) {
        nonce_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// The events a lab runs a class on.
    workshops (id) {
        id -> BigInt,
        name -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        utc_offset_secs -> Integer,
        time_zone -> Nullable<Text>,
        headcount -> Integer,
        spare_vms -> Integer,
        warmup_lead_secs -> Integer,
        vm_settings -> Text,
        admission -> Text,
        invite_code_hash -> Nullable<Text>,
        warning_minutes -> Text,
        keep_after_end_secs -> Integer,
        price_per_vm_hour_micros -> BigInt,
        spend_cap_micros -> Nullable<BigInt>,
        teardown_at_cap -> Bool,
        state -> Text,
        spend_alert -> Text,
        notice -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        idle_release_secs -> Nullable<Integer>,
        idle_warning_secs -> Integer,
        max_session_secs -> Nullable<Integer>,
        desktop_mode -> Nullable<Text>,
    }
}

diesel::table! {
    /// The emails allowed into a roster workshop.
    workshop_roster (workshop_id, email) {
        workshop_id -> BigInt,
        email -> Text,
    }
}

diesel::table! {
    /// A workshop's planned and done actions: durable jobs under a lease.
    workshop_actions (id) {
        id -> BigInt,
        workshop_id -> BigInt,
        kind -> Text,
        due_at -> Timestamp,
        amount -> Integer,
        state -> Text,
        outcome -> Nullable<Text>,
        done_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Every VM's life, kept after it is gone: boot times and VM-hours.
    vm_usage (id) {
        id -> BigInt,
        hostname -> Text,
        workshop_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        ready_at -> Nullable<Timestamp>,
        destroyed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Each participant's session: its steps' times and usage figures.
    participant_sessions (id) {
        id -> BigInt,
        hostname -> Text,
        assignment_seq -> BigInt,
        email -> Text,
        workshop_id -> Nullable<BigInt>,
        claimed_at -> Timestamp,
        command_received_at -> Nullable<Timestamp>,
        desktop_up_at -> Nullable<Timestamp>,
        software_first_used_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        end_reason -> Nullable<Text>,
        software_secs -> BigInt,
        gpu_measured -> Bool,
        gpu_active_secs -> BigInt,
        gpu_peak_utilization -> Integer,
        gpu_peak_memory_mib -> BigInt,
        last_activity_at -> Nullable<Timestamp>,
        step_changed_at -> Timestamp,
    }
}

diesel::table! {
    /// Notifications written with the change that causes them.
    outbox_events (id) {
        id -> BigInt,
        kind -> Text,
        subject -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// One event's delivery to one channel.
    outbox_deliveries (id) {
        id -> BigInt,
        event_id -> BigInt,
        channel -> Text,
        delivery_key -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Named tokens for the admin API (hashed), each read-only or admin.
    api_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        name -> Text,
        scope -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        parent_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Creations sent with `Idempotency-Key`, with their first answers.
    idempotency_keys (caller, key) {
        caller -> Text,
        key -> Text,
        route -> Text,
        request_hash -> Text,
        created_at -> Timestamp,
        answered_at -> Nullable<Timestamp>,
        status -> Nullable<Integer>,
        location -> Nullable<Text>,
        body -> Nullable<Text>,
        secret_withheld -> Bool,
    }
}

diesel::table! {
    /// Instructors' views of participants' desktops open now, refreshed while they last.
    desktop_views (id) {
        id -> Text,
        hostname -> Text,
        allocator_url -> Text,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    /// Which allocator holds each VM agent's desktop tunnel, refreshed while it lives.
    desktop_tunnels (hostname) {
        hostname -> Text,
        allocator_url -> Text,
        link_id -> Text,
        seen_at -> Timestamp,
    }
}

diesel::joinable!(vm_logs -> vms (hostname));
diesel::joinable!(desktop_tunnels -> vms (hostname));
diesel::joinable!(desktop_views -> vms (hostname));
diesel::joinable!(vm_log_totals -> vms (hostname));
diesel::joinable!(vm_enrollments -> vms (hostname));
diesel::joinable!(workshop_roster -> workshops (workshop_id));
diesel::joinable!(workshop_actions -> workshops (workshop_id));
diesel::joinable!(vms -> workshops (workshop_id));
diesel::joinable!(outbox_deliveries -> outbox_events (event_id));
diesel::joinable!(participant_sessions -> workshops (workshop_id));
diesel::allow_tables_to_appear_in_same_query!(
    vms,
    vm_logs,
    vm_log_totals,
    operations,
    audit_events,
    app_secrets,
    admin_sessions,
    enrollment_tokens,
    vm_enrollments,
    used_login_nonces,
    workshops,
    workshop_roster,
    workshop_actions,
    vm_usage,
    outbox_events,
    outbox_deliveries,
    participant_sessions,
    api_tokens,
    idempotency_keys,
    desktop_tunnels,
    desktop_views,
    boot_failure_streaks
);
