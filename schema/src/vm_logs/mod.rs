//! The `vm_logs` table: append-only VM log lines, its model and its queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::vm_logs;
use crate::DbConnection;

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = vm_logs)]
pub struct VmLogLine {
    pub id: i64,
    pub hostname: String,
    pub line: String,
    pub received_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = vm_logs)]
struct NewVmLogLine<'a> {
    hostname: &'a str,
    line: &'a str,
    received_at: NaiveDateTime,
}

impl VmLogLine {
    /// Appends `lines` for `hostname` in one statement, in order. Concurrent appends never
    /// overwrite each other: each line is its own row.
    pub fn append(
        conn: &mut DbConnection,
        hostname: &str,
        lines: &[String],
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        if lines.is_empty() {
            return Ok(0);
        }
        let rows: Vec<NewVmLogLine<'_>> = lines
            .iter()
            .map(|line| NewVmLogLine {
                hostname,
                line,
                received_at: now,
            })
            .collect();
        on_backend!(conn, |c| diesel::insert_into(vm_logs::table)
            .values(&rows)
            .execute(c))
    }

    /// The VM's lines with an id above `after_id` (all when `None`), oldest first, at most `limit`.
    pub fn list_for_host(
        conn: &mut DbConnection,
        hostname: &str,
        after_id: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<VmLogLine>> {
        vm_logs::table
            .filter(vm_logs::hostname.eq(hostname))
            .filter(vm_logs::id.gt(after_id.unwrap_or(0)))
            .order(vm_logs::id)
            .limit(limit)
            .select(VmLogLine::as_select())
            .load(conn)
    }
}
