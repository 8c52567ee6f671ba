//! Rows held under a lease (provisioning operations, workshop actions, outbox deliveries):
//! the rule for whether a lease is held, and the compare-and-set that takes one. A row is
//! taken only if its lease is still the one read, so of two allocators taking at once only
//! one gets each row, and a holder renewing meanwhile keeps it.

use chrono::NaiveDateTime;

/// Whether the lease read as `owner` until `expires` is held now: it has not run out and
/// its holder may still be alive (`owner_alive`: a holder on this machine that is gone is
/// not).
pub fn held(
    owner: Option<&str>,
    expires: Option<NaiveDateTime>,
    now: NaiveDateTime,
    owner_alive: &dyn Fn(&str) -> bool,
) -> bool {
    match (owner, expires) {
        (Some(owner), Some(until)) => until > now && owner_alive(owner),
        _ => false,
    }
}

/// Takes the row that `$target` (a filtered query of `$table`) selects, leased to `$owner`
/// until `$until`, if its `lease_expires_at` is still `$seen`; evaluates to
/// `QueryResult<Option<$row>>` with the row as taken.
macro_rules! take_lease {
    ($conn:expr, $table:ident, $row:ty, $target:expr, $seen:expr, $owner:expr, $until:expr) => {{
        let values = (
            $table::lease_owner.eq($owner),
            $table::lease_expires_at.eq($until),
        );
        match $seen {
            Some(seen) => on_backend!($conn, |c| diesel::update(
                $target.filter($table::lease_expires_at.eq(seen))
            )
            .set(values)
            .returning(<$row>::as_returning())
            .get_result(c)
            .optional()),
            None => on_backend!($conn, |c| diesel::update(
                $target.filter($table::lease_expires_at.is_null())
            )
            .set(values)
            .returning(<$row>::as_returning())
            .get_result(c)
            .optional()),
        }
    }};
}
pub(crate) use take_lease;
