//! Reading a VM's log as an admin does: newest first, a page at a time back in time,
//! narrowed to one source, to errors, or to lines holding some text.

use diesel::prelude::*;

use super::VmLogLine;
use crate::schema::vm_logs;
use crate::DbConnection;

diesel::define_sql_function! {
    /// SQL `lower` (same spelling on both backends).
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Which of a VM's lines to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    /// Only lines older than this id (the previous page's last id): paging back in time.
    pub before: Option<i64>,
    /// Only lines from this source.
    pub source: Option<String>,
    /// Only lines that read as errors.
    pub errors_only: bool,
    /// Only lines holding this text, whatever its case (ASCII).
    pub search: Option<String>,
}

impl VmLogLine {
    /// At most `limit` of `hostname`'s lines matching `query`, newest first.
    pub fn newest_first(
        conn: &mut DbConnection,
        hostname: &str,
        query: &LogQuery,
        limit: i64,
    ) -> QueryResult<Vec<VmLogLine>> {
        let mut select = vm_logs::table
            .filter(vm_logs::hostname.eq(hostname))
            .into_boxed();
        if let Some(before) = query.before {
            select = select.filter(vm_logs::id.lt(before));
        }
        if let Some(source) = &query.source {
            select = select.filter(vm_logs::source.eq(source.clone()));
        }
        if query.errors_only {
            select = select.filter(vm_logs::is_error.eq(true));
        }
        if let Some(text) = &query.search {
            select = select.filter(
                lower(vm_logs::line)
                    .like(format!("%{}%", escape_like(&text.to_ascii_lowercase())))
                    .escape('\\'),
            );
        }
        select
            .order(vm_logs::id.desc())
            .limit(limit)
            .select(VmLogLine::as_select())
            .load(conn)
    }

    /// The sources `hostname`'s lines have come from, sorted, for the filter's choices (read
    /// from its totals, not its lines; a source whose lines were all trimmed stays listed).
    pub fn sources(conn: &mut DbConnection, hostname: &str) -> QueryResult<Vec<String>> {
        super::retention::sources(conn, hostname)
    }
}

/// `text` with LIKE's wildcards taken literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
