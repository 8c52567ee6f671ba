//! The `vm_logs` table: each VM's log lines, newest kept within per-VM caps, its model, its
//! appends (with retention on write, [`retention`]) and its reads ([`query`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::log_text::reads_as_error;
use crate::schema::vm_logs;
use crate::DbConnection;

mod query;
mod retention;

pub use query::LogQuery;
pub use retention::Retention;

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = vm_logs)]
pub struct VmLogLine {
    pub id: i64,
    pub hostname: String,
    pub line: String,
    pub received_at: NaiveDateTime,
    /// Where on the VM it came from: `agent`, `software`, `boot`, … (`vm` for lines in the
    /// original's body, which says nothing of it).
    pub source: String,
    /// When the VM logged it, where it said.
    pub logged_at: Option<NaiveDateTime>,
    pub bytes: i32,
    /// Whether it reads as an error ([`reads_as_error`]).
    pub is_error: bool,
}

/// A line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    pub source: String,
    pub logged_at: Option<NaiveDateTime>,
    pub text: String,
    /// Its number in the agent's spool (see [`VmLogLine::append`]).
    pub seq: Option<i64>,
}

impl NewLogLine {
    /// A line of the original's body: no source, no time.
    pub fn plain(text: impl Into<String>) -> Self {
        NewLogLine {
            source: "vm".to_owned(),
            logged_at: None,
            text: text.into(),
            seq: None,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = vm_logs)]
struct NewRow<'a> {
    hostname: &'a str,
    line: &'a str,
    received_at: NaiveDateTime,
    source: &'a str,
    logged_at: Option<NaiveDateTime>,
    bytes: i32,
    is_error: bool,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    pub stored: usize,
    /// Lines the VM had sent before (a batch sent again), not stored twice.
    pub duplicates: usize,
    /// The VM's oldest lines removed to stay within its caps.
    pub trimmed: usize,
}

impl VmLogLine {
    /// Appends `lines` for `hostname` in order, then removes the VM's oldest lines past
    /// `retention`. Lines numbered in an agent's spool `stream` (`seq`) that the VM stored
    /// already are skipped, so a batch sent again after its answer was lost is stored once.
    /// Run it in a transaction: the VM's totals row is locked from the first statement to
    /// the commit, so concurrent appends for one VM take turns and the caps hold; appends
    /// for different VMs never wait for each other.
    pub fn append(
        conn: &mut DbConnection,
        hostname: &str,
        stream: Option<&str>,
        lines: &[NewLogLine],
        now: NaiveDateTime,
        retention: &Retention,
    ) -> QueryResult<Appended> {
        if lines.is_empty() {
            return Ok(Appended::default());
        }
        let totals = retention::lock_totals(conn, hostname)?;
        let stored_up_to = match stream {
            Some(stream) if totals.stream.as_deref() == Some(stream) => totals.last_seq,
            _ => None,
        };
        let fresh: Vec<&NewLogLine> = lines
            .iter()
            .filter(|line| match (line.seq, stored_up_to) {
                (Some(seq), Some(stored)) => seq > stored,
                _ => true,
            })
            .collect();
        let duplicates = lines.len() - fresh.len();
        if fresh.is_empty() {
            return Ok(Appended {
                duplicates,
                ..Appended::default()
            });
        }
        let rows: Vec<NewRow<'_>> = fresh
            .iter()
            .map(|line| NewRow {
                hostname,
                line: &line.text,
                received_at: now,
                source: &line.source,
                logged_at: line.logged_at,
                bytes: i32::try_from(line.text.len()).unwrap_or(i32::MAX),
                is_error: reads_as_error(&line.text),
            })
            .collect();
        let added_bytes: i64 = rows.iter().map(|row| i64::from(row.bytes)).sum();
        let added_lines = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let stored = on_backend!(conn, |c| diesel::insert_into(vm_logs::table)
            .values(&rows)
            .execute(c))?;
        let mut known: Vec<&str> = totals.sources.lines().collect();
        let before = known.len();
        for line in &fresh {
            if !known.contains(&line.source.as_str()) {
                known.push(&line.source);
            }
        }
        if known.len() > before {
            retention::record_sources(conn, hostname, &known.join("\n"))?;
        }
        let last_seq = fresh.iter().filter_map(|line| line.seq).max();
        let numbered = stream.zip(last_seq.or(stored_up_to));
        retention::add(conn, hostname, (added_lines, added_bytes), numbered)?;
        let trimmed = retention.trim(
            conn,
            hostname,
            (totals.lines + added_lines, totals.bytes + added_bytes),
        )?;
        Ok(Appended {
            stored,
            duplicates,
            trimmed,
        })
    }

    /// The VM's lines with an id above `after_id` (all when `None`), oldest first, at most
    /// `limit`: for following a log live and for reading it whole in order.
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
