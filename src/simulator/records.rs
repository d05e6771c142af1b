//! What reached the simulator: one [`RecordedRequest`] per request to `/token`, `/v3/*` or any
//! other non-control path, including rejected, rate-limited and faulted ones, so tests can assert
//! on what the gateway actually sent upstream (counts, retries, trace headers).
//!
//! A request is recorded when its head arrives and completed when it is answered. Recording only
//! the answer would hide exactly what timing tests need to see: an attempt still being handled,
//! or one whose caller gave up (a deadline) before the answer, which is never answered at all.
//!
//! The log keeps the most recent [`MAX_RECORDS`] requests so a long-running standalone simulator
//! does not grow without bound.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde::Serialize;

use super::faults::FaultKind;

/// How many requests the log keeps.
pub const MAX_RECORDS: usize = 10_000;

/// One request as received, and how it was answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v3/unify`.
    pub path: String,
    /// HTTP status sent; `None` while the request is in flight, when its caller hung up before
    /// the answer, or when the drop fault cut the connection.
    pub status: Option<u16>,
    /// Prove error code of the answer, when it was an error with a code.
    pub code: Option<u32>,
    /// The injected fault, if any.
    pub fault: Option<FaultKind>,
    /// When it arrived, by the simulator's [`Clock`](super::Clock).
    pub at: SystemTime,
    /// When it arrived, by tokio's clock (follows `tokio::time::pause`/`advance` in tests), for
    /// measuring the spacing of retries.
    pub received: tokio::time::Instant,
    /// When the simulator answered (or cut the connection, for the drop fault), by the
    /// simulator's clock; `None` while in flight, and for good if the caller hung up first.
    pub answered_at: Option<SystemTime>,
    /// The same moment by tokio's clock, to compare with [`received`](Self::received).
    pub answered: Option<tokio::time::Instant>,
    /// The client ID: from the bearer token on `/v3`, from the form on `/token`; set as soon as
    /// the token or form is read, so an unanswered request has it too.
    pub client_id: Option<String>,
    /// Whether an `Authorization` header was present (its value is never kept).
    pub has_authorization: bool,
    /// W3C trace context and baggage headers, as received.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body, when the request had one that parsed (never `/token`'s form, which holds
    /// the client secret); `None` until the whole body has arrived.
    pub body: Option<serde_json::Value>,
}

impl RecordedRequest {
    /// A request whose head just arrived.
    pub(crate) fn arrived(method: &str, path: &str, headers: &HeaderMap, at: SystemTime) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            status: None,
            code: None,
            fault: None,
            at,
            received: tokio::time::Instant::now(),
            answered_at: None,
            answered: None,
            client_id: None,
            has_authorization: headers.contains_key("authorization"),
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
            baggage: header("baggage"),
            user_agent: header("user-agent"),
            content_type: header("content-type"),
            body: None,
        }
    }

    /// Not answered (yet): still being handled, or its caller hung up before the answer.
    pub fn in_flight(&self) -> bool {
        self.answered.is_none()
    }
}

/// A snapshot of the request log, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Records {
    requests: Vec<RecordedRequest>,
}

impl Records {
    /// Every recorded request, oldest first.
    pub fn requests(&self) -> &[RecordedRequest] {
        &self.requests
    }

    /// Requests to `path`, oldest first.
    pub fn for_path<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a RecordedRequest> {
        self.requests.iter().filter(move |r| r.path == path)
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.for_path(path).count()
    }

    /// How many requests to `path` were answered with HTTP `status`.
    pub fn count_status(&self, path: &str, status: u16) -> usize {
        self.for_path(path)
            .filter(|r| r.status == Some(status))
            .count()
    }

    /// The most recent request to `path`.
    pub fn last(&self, path: &str) -> Option<&RecordedRequest> {
        self.requests.iter().rev().find(|r| r.path == path)
    }

    /// How many requests were recorded.
    pub fn total(&self) -> usize {
        self.requests.len()
    }

    /// Requests not answered (yet), oldest first: see [`RecordedRequest::in_flight`].
    pub fn in_flight(&self) -> impl Iterator<Item = &RecordedRequest> {
        self.requests.iter().filter(|r| r.in_flight())
    }
}

/// Which record a request has, so its handlers can complete it; carried in the request's
/// extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordId(u64);

/// The shared log.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    records: VecDeque<RecordedRequest>,
    /// The id of `records[0]`: ids count every record ever pushed, so an id stays valid while
    /// older records are evicted, and points at nothing once its own record is gone.
    first: u64,
}

impl Recorder {
    pub fn push(&self, record: RecordedRequest) -> RecordId {
        let mut log = self.log.lock();
        if log.records.len() == MAX_RECORDS {
            log.records.pop_front();
            log.first += 1;
        }
        log.records.push_back(record);
        RecordId(log.first + log.records.len() as u64 - 1)
    }

    /// Changes record `id`; does nothing if it was evicted or cleared since.
    pub fn update(&self, id: RecordId, change: impl FnOnce(&mut RecordedRequest)) {
        let mut log = self.log.lock();
        let index = id.0.checked_sub(log.first).map(usize::try_from);
        if let Some(Ok(index)) = index
            && let Some(record) = log.records.get_mut(index)
        {
            change(record);
        }
    }

    pub fn snapshot(&self) -> Records {
        Records {
            requests: self.log.lock().records.iter().cloned().collect(),
        }
    }

    pub fn clear(&self) {
        let mut log = self.log.lock();
        log.first += log.records.len() as u64;
        log.records.clear();
    }
}

/// `GET /_simulator/records` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecordsJson {
    total: usize,
    requests: Vec<RecordJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordJson {
    method: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<FaultKind>,
    /// Milliseconds since the Unix epoch, by the simulator's clock.
    at_ms: u128,
    /// When it was answered, likewise; absent while in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_at_ms: Option<u128>,
    in_flight: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    has_authorization: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baggage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

impl From<&Records> for RecordsJson {
    fn from(records: &Records) -> Self {
        Self {
            total: records.total(),
            requests: records
                .requests()
                .iter()
                .map(|r| RecordJson {
                    method: r.method.clone(),
                    path: r.path.clone(),
                    status: r.status,
                    code: r.code,
                    fault: r.fault,
                    at_ms: epoch_ms(r.at),
                    answered_at_ms: r.answered_at.map(epoch_ms),
                    in_flight: r.in_flight(),
                    client_id: r.client_id.clone(),
                    has_authorization: r.has_authorization,
                    traceparent: r.traceparent.clone(),
                    tracestate: r.tracestate.clone(),
                    baggage: r.baggage.clone(),
                    user_agent: r.user_agent.clone(),
                })
                .collect(),
        }
    }
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RecordedRequest {
        RecordedRequest::arrived("POST", path, &HeaderMap::new(), SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn an_update_reaches_its_own_record_after_older_ones_are_evicted() {
        let recorder = Recorder::default();
        let first = recorder.push(record("/first"));
        let ids: Vec<RecordId> = (0..MAX_RECORDS)
            .map(|_| recorder.push(record("/next")))
            .collect();
        let last = *ids.last().unwrap_or(&first);
        recorder.update(last, |r| r.status = Some(200));
        // The first record is gone; its id must not land on whatever took its place.
        recorder.update(first, |r| r.status = Some(500));
        let records = recorder.snapshot();
        assert_eq!(records.total(), MAX_RECORDS);
        assert_eq!(records.count("/first"), 0);
        assert_eq!(records.requests().last().and_then(|r| r.status), Some(200));
        assert_eq!(records.count_status("/next", 500), 0);
    }

    #[test]
    fn an_update_after_clear_changes_nothing() {
        let recorder = Recorder::default();
        let before = recorder.push(record("/old"));
        recorder.clear();
        recorder.push(record("/new"));
        recorder.update(before, |r| r.status = Some(500));
        assert_eq!(recorder.snapshot().requests()[0].status, None);
    }
}
