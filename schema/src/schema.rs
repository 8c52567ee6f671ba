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

diesel::joinable!(vm_logs -> vms (hostname));
diesel::joinable!(vm_log_totals -> vms (hostname));
diesel::joinable!(vm_enrollments -> vms (hostname));
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
    used_login_nonces
);
