//! Cursor pages for the admin API's whole lists (VMs, workshops, tokens, enrollment tokens,
//! notifications): `?limit=N&after=CURSOR`. An answer with more behind it carries
//! `Link: <PATH?after=CURSOR&limit=N>; rel="next"`, where the cursor is the last item's
//! (its hostname or id), so a page never repeats or skips an item that stays in the list.
//! The time-ordered lists that live in tables (the audit trail, operations, a VM's log) page
//! in the database instead, by `before`, an id.

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Items on a page when the request says nothing, and at most.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// The page a request asks for.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The cursor of the `Link: rel="next"` header: the items after it.
    pub after: Option<String>,
    /// 1 to 1,000; 100 when absent.
    pub limit: Option<usize>,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    limit: usize,
}

/// The page size a request asks for (`default` when it says nothing), or what to fix.
pub fn checked_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )))
    }
}

/// A page read from a table newest first, by `before`: `fetched` holds up to `limit + 1`
/// items, the extra one saying that older ones exist. Answered as a JSON array, with the
/// next page's `Link` (its `before` the last item's id) when there is one.
pub fn respond_before<T: Serialize>(
    path: &str,
    mut fetched: Vec<T>,
    limit: usize,
    id_of: impl Fn(&T) -> i64,
) -> HttpResponse {
    let more = fetched.len() > limit;
    fetched.truncate(limit);
    let mut answer = HttpResponse::Ok();
    if let (true, Some(last)) = (more, fetched.last()) {
        answer.insert_header((
            header::LINK,
            next_link(path, "before", &id_of(last).to_string(), limit),
        ));
    }
    answer.json(fetched)
}

/// The page of `items` (in the list's order, each with the cursor `cursor_of` gives it)
/// that `query` asks for. A cursor that names no item any more is refused: the list changed
/// under it, and only reading it again from the start is sure to miss nothing.
pub fn page<T>(
    items: Vec<T>,
    cursor_of: impl Fn(&T) -> String,
    query: &PageQuery,
) -> Result<Page<T>, ApiError> {
    let limit = checked_limit(query.limit, DEFAULT_LIMIT)?;
    let start = match &query.after {
        None => 0,
        Some(after) => {
            items
                .iter()
                .position(|item| &cursor_of(item) == after)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "the cursor `{after}` is no longer in the list: read it again from the \
                         start"
                    ))
                })?
                + 1
        }
    };
    let mut items: Vec<T> = items.into_iter().skip(start).collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page { items, next, limit })
}

impl<T> Page<T> {
    /// 200 with `body` (the items, in the list's shape) and the next page's `Link`.
    pub fn respond(&self, path: &str, body: &impl Serialize) -> HttpResponse {
        let mut answer = HttpResponse::Ok();
        if let Some(next) = &self.next {
            answer.insert_header((header::LINK, next_link(path, "after", next, self.limit)));
        }
        answer.json(body)
    }
}

/// `<PATH?NAME=CURSOR&limit=N>; rel="next"` (with `&` when `path` has a query already).
pub fn next_link(path: &str, name: &str, cursor: &str, limit: usize) -> String {
    let cursor: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    // The path may carry the list's filters already.
    let join = if path.contains('?') { '&' } else { '?' };
    format!("<{path}{join}{name}={cursor}&limit={limit}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<&str>, limit: usize) -> PageQuery {
        PageQuery {
            after: after.map(str::to_owned),
            limit: Some(limit),
        }
    }

    #[test]
    fn pages_follow_each_other_without_repeats_or_gaps() {
        let items: Vec<u32> = (1..=5).collect();
        let first = page(items.clone(), u32::to_string, &query(None, 2)).expect("page");
        assert_eq!(
            (first.items.clone(), first.next.clone()),
            (vec![1, 2], Some("2".into()))
        );
        let second = page(items.clone(), u32::to_string, &query(Some("2"), 2)).expect("page");
        assert_eq!(second.items, vec![3, 4]);
        let last = page(items.clone(), u32::to_string, &query(Some("4"), 2)).expect("page");
        assert_eq!((last.items, last.next), (vec![5], None));
        assert!(page(items.clone(), u32::to_string, &query(Some("9"), 2)).is_err());
        assert!(page(items.clone(), u32::to_string, &query(None, 0)).is_err());
        assert!(page(items, u32::to_string, &query(None, MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn the_link_keeps_the_filters_and_encodes_the_cursor() {
        assert_eq!(
            next_link("/api/admin/vms?state=ready", "after", "vm a", 2),
            "</api/admin/vms?state=ready&after=vm+a&limit=2>; rel=\"next\""
        );
        assert_eq!(
            next_link("/api/admin/tokens", "after", "7", 100),
            "</api/admin/tokens?after=7&limit=100>; rel=\"next\""
        );
    }
}
