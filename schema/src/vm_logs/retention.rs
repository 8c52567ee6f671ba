//! Retention on write: each VM keeps at most so many lines and bytes of log, the oldest going
//! first. The running totals live in `vm_log_totals`, so trimming reads only the VM's oldest
//! lines through its `(hostname, id)` index, never the whole table.

use diesel::prelude::*;

use crate::schema::{vm_log_totals, vm_logs};
use crate::DbConnection;

/// Oldest lines read per step while finding where to cut.
const TRIM_STEP: i64 = 1_000;

/// The most each VM keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_lines: i64,
    pub max_bytes: i64,
}

impl Retention {
    /// Removes `hostname`'s oldest lines until it is within the caps, given its totals;
    /// returns how many went.
    pub(super) fn trim(
        &self,
        conn: &mut DbConnection,
        hostname: &str,
        (lines, bytes): (i64, i64),
    ) -> QueryResult<usize> {
        let excess_lines = (lines - self.max_lines).max(0);
        let excess_bytes = (bytes - self.max_bytes).max(0);
        if excess_lines == 0 && excess_bytes == 0 {
            return Ok(0);
        }
        let (mut cut_lines, mut cut_bytes, mut cut_id) = (0i64, 0i64, 0i64);
        'find: loop {
            let oldest: Vec<(i64, i32)> = vm_logs::table
                .filter(vm_logs::hostname.eq(hostname))
                .filter(vm_logs::id.gt(cut_id))
                .order(vm_logs::id)
                .limit(TRIM_STEP)
                .select((vm_logs::id, vm_logs::bytes))
                .load(conn)?;
            if oldest.is_empty() {
                break;
            }
            for (id, size) in oldest {
                cut_id = id;
                cut_lines += 1;
                cut_bytes += i64::from(size);
                if cut_lines >= excess_lines && cut_bytes >= excess_bytes {
                    break 'find;
                }
            }
        }
        let removed = diesel::delete(
            vm_logs::table
                .filter(vm_logs::hostname.eq(hostname))
                .filter(vm_logs::id.le(cut_id)),
        )
        .execute(conn)?;
        diesel::update(vm_log_totals::table.find(hostname))
            .set((
                vm_log_totals::lines.eq(vm_log_totals::lines - cut_lines),
                vm_log_totals::bytes.eq(vm_log_totals::bytes - cut_bytes),
            ))
            .execute(conn)?;
        Ok(removed)
    }
}

/// A VM's totals row as an append finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) lines: i64,
    pub(super) bytes: i64,
    pub(super) stream: Option<String>,
    pub(super) last_seq: Option<i64>,
    /// The sources seen, one per line.
    pub(super) sources: String,
}

/// `hostname`'s totals, its row made if missing and locked until the transaction ends, so
/// appends for one VM take turns (refused for a VM that does not exist).
pub(super) fn lock_totals(conn: &mut DbConnection, hostname: &str) -> QueryResult<Totals> {
    // The no-op update takes the row's lock where the row exists already.
    on_backend!(conn, |c| diesel::insert_into(vm_log_totals::table)
        .values((
            vm_log_totals::hostname.eq(hostname),
            vm_log_totals::lines.eq(0i64),
            vm_log_totals::bytes.eq(0i64),
        ))
        .on_conflict(vm_log_totals::hostname)
        .do_update()
        .set(vm_log_totals::lines.eq(vm_log_totals::lines))
        .execute(c))?;
    let (lines, bytes, stream, last_seq, sources) = vm_log_totals::table
        .find(hostname)
        .select((
            vm_log_totals::lines,
            vm_log_totals::bytes,
            vm_log_totals::stream,
            vm_log_totals::last_seq,
            vm_log_totals::sources,
        ))
        .first(conn)?;
    Ok(Totals {
        lines,
        bytes,
        stream,
        last_seq,
        sources,
    })
}

/// Records a source not seen before for `hostname` (`sources`: every one seen, by line).
pub(super) fn record_sources(
    conn: &mut DbConnection,
    hostname: &str,
    sources: &str,
) -> QueryResult<()> {
    diesel::update(vm_log_totals::table.find(hostname))
        .set(vm_log_totals::sources.eq(sources))
        .execute(conn)
        .map(|_| ())
}

/// The sources `hostname`'s lines have come from, sorted.
pub(super) fn sources(conn: &mut DbConnection, hostname: &str) -> QueryResult<Vec<String>> {
    let sources: Option<String> = vm_log_totals::table
        .find(hostname)
        .select(vm_log_totals::sources)
        .first(conn)
        .optional()?;
    let mut sources: Vec<String> = sources
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    sources.sort();
    Ok(sources)
}

/// Adds what an append stored to `hostname`'s totals, and the last line numbered in
/// `stream`.
pub(super) fn add(
    conn: &mut DbConnection,
    hostname: &str,
    (lines, bytes): (i64, i64),
    numbered: Option<(&str, i64)>,
) -> QueryResult<()> {
    let update = diesel::update(vm_log_totals::table.find(hostname));
    match numbered {
        Some((stream, last_seq)) => update
            .set((
                vm_log_totals::lines.eq(vm_log_totals::lines + lines),
                vm_log_totals::bytes.eq(vm_log_totals::bytes + bytes),
                vm_log_totals::stream.eq(stream),
                vm_log_totals::last_seq.eq(last_seq),
            ))
            .execute(conn)?,
        None => update
            .set((
                vm_log_totals::lines.eq(vm_log_totals::lines + lines),
                vm_log_totals::bytes.eq(vm_log_totals::bytes + bytes),
            ))
            .execute(conn)?,
    };
    Ok(())
}
