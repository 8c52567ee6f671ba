//! Server-sent events, all in one place: the framing (text of any shape becomes one event's
//! `data:` lines, so no byte of a VM's log line can end an event early or start a field of
//! its own), the stream answer with keep-alives that ends when the allocator stops, and the
//! dashboard's three live streams (VM changes, operations, a VM's log lines).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use lablink_actors::provisioning_queue::OperationEvent;
use lablink_schema::operations::{Operation, OperationState};
use lablink_schema::vm_logs::VmLogLine;
use tokio::sync::broadcast;

use crate::state::AppState;

/// `data: …` lines for `text`, ending the event. The event-stream format ends a line at CR,
/// LF or CRLF, so each of them starts a new `data:` line (the browser joins them back with
/// LF); a bare CR can therefore never smuggle in an `event:` or `id:` field.
pub fn data_event(text: &str) -> String {
    let mut event = String::with_capacity(text.len() + 8);
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        event.push_str("data: ");
        event.push_str(&rest[..end]);
        event.push('\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    event.push('\n');
    event
}

/// Comment lines keep idle event streams open through proxies.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How often a live log view looks for new lines.
const LOG_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Most log lines read at once for a live log view.
const LOG_LINES_PER_READ: i64 = 500;

/// An event-stream answer carrying `events`, with keep-alive comments, ending when the events
/// end or the allocator starts stopping (so a graceful stop need not wait for open pages).
pub fn event_stream<S>(state: &AppState, events: S) -> HttpResponse
where
    S: futures_util::Stream<Item = String> + 'static,
{
    let stopping = {
        let state = state.clone();
        async move { state.until_stopping().await }
    };
    let keepalive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(KEEPALIVE_INTERVAL).await;
        Some((": keepalive\n\n".to_owned(), ()))
    });
    // The answer ends when the events do (an operation that finished), not only when the
    // allocator stops: the keep-alives alone never end.
    let events = events
        .map(Some)
        .chain(futures_util::stream::once(std::future::ready(None)));
    let body = futures_util::stream::select(events, keepalive.map(Some))
        .take_while(|chunk| std::future::ready(chunk.is_some()))
        .filter_map(std::future::ready)
        .take_until(stopping)
        .map(|chunk| Ok::<_, actix_web::Error>(web::Bytes::from(chunk)));
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

/// An `event: vms` whenever a VM changes (the instances page then re-reads its rows).
pub fn vm_changes(state: &AppState) -> HttpResponse {
    let mut changes = state.changes.subscribe();
    // What changed between rendering the page and subscribing would be lost, so the stream
    // starts with one event: the page re-reads once, after the subscription exists.
    let stream = futures_util::stream::once(std::future::ready(()))
        .chain(futures_util::stream::poll_fn(move |cx| changes.poll_recv(cx)).map(|_| ()))
        .map(|()| "event: vms\ndata: changed\n\n".to_owned());
    event_stream(state, stream)
}

/// Each operation event as JSON: first where each of `current` stands (read after
/// subscribing, so nothing falls between the page and the stream), then as they happen.
pub fn operations(
    state: &AppState,
    current: &[Operation],
    receiver: broadcast::Receiver<OperationEvent>,
) -> HttpResponse {
    let json_event =
        |event: &OperationEvent| data_event(&serde_json::to_string(event).unwrap_or_default());
    let snapshot: Vec<String> = current
        .iter()
        .filter_map(current_state_event)
        .map(|event| json_event(&event))
        .collect();
    let live = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((json_event(&event), receiver)),
                // A slow viewer skips ahead; the stored tail has everything.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    event_stream(state, futures_util::stream::iter(snapshot).chain(live))
}

/// The event that brings a live page up to `operation`'s current state.
fn current_state_event(operation: &Operation) -> Option<OperationEvent> {
    match operation.state() {
        OperationState::Queued => None,
        OperationState::Running => Some(OperationEvent::Started {
            operation_id: operation.id,
        }),
        state @ (OperationState::Succeeded | OperationState::Failed) => {
            Some(OperationEvent::Finished {
                operation_id: operation.id,
                state,
                error: operation.error.clone(),
            })
        }
    }
}

/// How often a followed operation's row is read.
const OPERATION_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One operation's progress for the admin API: an `event: operation` with its view now, and
/// again whenever its state or output changes, ending after it has finished. It reads the
/// row rather than this allocator's events, so it follows an operation whichever allocator
/// runs it.
pub fn operation_progress(state: &AppState, first: Operation) -> HttpResponse {
    let reader = state.clone();
    let id = first.id;
    let finished = |view: &lablink_schema::wire::OperationView| {
        matches!(
            view.state,
            OperationState::Succeeded | OperationState::Failed
        )
    };
    // (the view read and not yet compared, the last one sent, whether the end was sent)
    let start = (Some(first.view()), None, false);
    let stream = futures_util::stream::unfold(start, move |(mut pending, sent, ended)| {
        let state = reader.clone();
        async move {
            if ended {
                return None;
            }
            loop {
                if let Some(view) = pending.take() {
                    if sent.as_ref() != Some(&view) {
                        let event = format!(
                            "event: operation\n{}",
                            data_event(&serde_json::to_string(&view).unwrap_or_default())
                        );
                        let ended = finished(&view);
                        return Some((event, (None, Some(view), ended)));
                    }
                }
                tokio::time::sleep(OPERATION_POLL_INTERVAL).await;
                // A failed read is tried again; the keep-alives hold the client meanwhile.
                pending = state
                    .read(move |conn| Operation::find_by_id(conn, id))
                    .await
                    .ok()
                    .flatten()
                    .map(|operation| operation.view());
            }
        }
    });
    event_stream(state, stream)
}

/// A VM's log lines after line id `after`, each as one event, as they are stored.
pub fn log_lines(state: &AppState, hostname: String, after: i64) -> HttpResponse {
    let reader = state.clone();
    let stream = futures_util::stream::unfold(
        (after, Vec::<String>::new().into_iter()),
        move |(mut after, mut pending)| {
            let state = reader.clone();
            let hostname = hostname.clone();
            async move {
                loop {
                    if let Some(line) = pending.next() {
                        return Some((data_event(&line), (after, pending)));
                    }
                    tokio::time::sleep(LOG_POLL_INTERVAL).await;
                    let (host, since) = (hostname.clone(), after);
                    let lines = state
                        .read(move |conn| {
                            VmLogLine::list_for_host(conn, &host, Some(since), LOG_LINES_PER_READ)
                        })
                        .await
                        .unwrap_or_default();
                    if let Some(last) = lines.last() {
                        after = last.id;
                    }
                    pending = lines
                        .into_iter()
                        .map(|l| l.line)
                        .collect::<Vec<_>>()
                        .into_iter();
                }
            }
        },
    );
    event_stream(state, stream)
}

#[cfg(test)]
mod tests {
    use super::data_event;

    #[test]
    fn every_line_break_starts_a_data_line() {
        assert_eq!(data_event("plain"), "data: plain\n\n");
        assert_eq!(data_event("a\nb"), "data: a\ndata: b\n\n");
        assert_eq!(data_event("a\r\nb"), "data: a\ndata: b\n\n");
        assert_eq!(
            data_event("ok\revent: vms\rid: 9"),
            "data: ok\ndata: event: vms\ndata: id: 9\n\n"
        );
        assert_eq!(data_event("end\n"), "data: end\ndata: \n\n");
        assert_eq!(data_event(""), "data: \n\n");
    }
}
