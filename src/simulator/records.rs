//! What reached the simulator: one [`RecordedRequest`] per request to `/token`, `/v3/*` or any
//! other non-control path, including rejected, rate-limited and faulted ones, so tests can assert
//! on what the gateway actually sent upstream (counts, retries, trace headers).
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
    /// HTTP status sent; `None` when the connection was dropped by the drop fault.
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
    /// The client ID: from the bearer token on `/v3`, from the form on `/token`.
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
    /// the client secret).
    pub body: Option<serde_json::Value>,
}

impl RecordedRequest {
    pub(crate) fn new(
        method: &str,
        path: &str,
        headers: &HeaderMap,
        at: SystemTime,
        body: Option<serde_json::Value>,
    ) -> Self {
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
            client_id: None,
            has_authorization: headers.contains_key("authorization"),
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
            baggage: header("baggage"),
            user_agent: header("user-agent"),
            content_type: header("content-type"),
            body,
        }
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
}

/// The shared log.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    log: Mutex<VecDeque<RecordedRequest>>,
}

impl Recorder {
    pub fn push(&self, record: RecordedRequest) {
        let mut log = self.log.lock();
        if log.len() == MAX_RECORDS {
            log.pop_front();
        }
        log.push_back(record);
    }

    pub fn snapshot(&self) -> Records {
        Records {
            requests: self.log.lock().iter().cloned().collect(),
        }
    }

    pub fn clear(&self) {
        self.log.lock().clear();
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
                    at_ms: r.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()),
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
