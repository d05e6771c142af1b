//! Logs: one JSON line per RPC, nothing personal or secret in any line, and each test's lines
//! kept apart from every other test's.
//!
//! The subscriber is process-wide, so every test's gateway writes through the one [`LogSink`].
//! The sink hands each line to the [`Capture`] the writing thread has claimed: [`run`] gives a
//! test its own runtime and claims one capture on all its threads, so a test searches only the
//! lines its own gateway and simulator wrote. Lines from threads no test claimed (the shared
//! runtime's) go to the sink's own buffer, which no test reads.

use std::cell::RefCell;

use prove_gateway::grpc::pb::{VerifyOutcome, VerifyRequest, VerifyStatusRequest};

use super::*;

/// The log lines of one test.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CLAIMED: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Sends this thread's log lines to `capture` (none: to no test) and returns the previous one.
pub fn claim(capture: Option<Capture>) -> Option<Capture> {
    CLAIMED.with(|claimed| claimed.replace(capture))
}

/// The lines of the test running on this thread (see [`run`]).
pub fn own_logs() -> Capture {
    CLAIMED
        .with(|claimed| claimed.borrow().clone())
        .expect("own_logs() is called inside run()")
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Every line so far, parsed: the format is JSON, one object per line.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().clone()).unwrap()
    }
}

/// The writer of the process-wide subscriber. The fmt layer formats a whole line, then asks for
/// a writer on the thread that emitted the event and writes the line in one call, so a line
/// never straddles two captures.
#[derive(Clone, Default)]
pub struct LogSink {
    unclaimed: Capture,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        // `try_with`: a thread being torn down may still log after its thread-locals are gone.
        CLAIMED
            .try_with(|claimed| claimed.borrow().clone())
            .ok()
            .flatten()
            .unwrap_or_else(|| self.unclaimed.clone())
    }
}

fn is_rpc_line(line: &&serde_json::Value) -> bool {
    line["message"] == "rpc"
}

#[test]
fn a_test_sees_only_its_own_log_lines() {
    // Another test in all but name, on its own thread and runtime: a refused call, whose
    // INVALID_ARGUMENT line a search of a shared sink would find from any test.
    let theirs = std::thread::spawn(|| {
        run(async {
            let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
            let status = app.unify.unify(unify_request("")).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            own_logs().lines()
        })
    })
    .join()
    .unwrap();
    let refused: Vec<&serde_json::Value> = theirs
        .iter()
        .filter(is_rpc_line)
        .filter(|l| l["code"] == "INVALID_ARGUMENT")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "the other test sees its line: {theirs:#?}"
    );

    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let started = app
            .unify
            .unify(unify_request(PHONE))
            .await
            .unwrap()
            .into_inner();
        let mine = own_logs().lines();
        let rpc: Vec<&serde_json::Value> = mine.iter().filter(is_rpc_line).collect();
        // Exactly this test's one call: not the other test's line, nor any line of the tests
        // running beside this one.
        assert_eq!(rpc.len(), 1, "{rpc:#?}");
        assert_eq!(rpc[0]["code"], "OK");
        assert_eq!(rpc[0]["correlation_id"], started.correlation_id.as_str());
    });
}

#[test]
fn a_failed_rpc_is_logged_and_its_span_is_marked_without_the_phone_number() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let (trace_id, caller_span) = new_ids();
        let mut request = unify_request(PHONE);
        request.possession_type = PossessionType::Desktop.into(); // needs final_target_url
        let status = app
            .unify
            .unify(traced(request, &trace_id, &caller_span))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let unknown = app
            .unify
            .unify(traced(unify_request("2001000000"), &trace_id, &caller_span))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);

        let rpc = "prove.gateway.v1.UnifyService/Unify";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, rpc).len() == 2
        })
        .await;
        for server in find(&spans, SpanKind::Server, rpc) {
            // Caller errors are not server errors: the span status stays unset.
            let code = server.status.as_ref().map_or(0, |s| s.code);
            assert_eq!(code, StatusCode::Unset as i32, "{server:#?}");
            assert_nothing_secret(&span_text(server), "a span", None);
            assert!(!span_text(server).contains("2001000000"));
        }
        let codes: BTreeSet<String> = find(&spans, SpanKind::Server, rpc)
            .iter()
            .map(|s| attr(s, "rpc.response.status_code").unwrap())
            .collect();
        assert_eq!(
            codes,
            BTreeSet::from(["INVALID_ARGUMENT".into(), "NOT_FOUND".into()])
        );
        let text = own_logs().text();
        assert!(text.contains(r#""code":"INVALID_ARGUMENT""#));
        assert_nothing_secret(&text, "the logs", None);
        assert!(!text.contains("2001000000"));
    });
}

#[test]
fn a_verify_leaves_no_name_email_or_phone_in_its_log_lines_or_spans() {
    const FIRST_NAME: &str = "Sheilakathryn";
    const LAST_NAME: &str = "Butrimovich";
    const EMAIL: &str = "sheilakathryn.butrimovich@example.com";
    const VERIFY_PHONE: &str = "2001004011";
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let (trace_id, caller_span) = new_ids();
        let request = VerifyRequest {
            possession_type: PossessionType::Mobile.into(),
            phone_number: VERIFY_PHONE.into(),
            first_name: FIRST_NAME.into(),
            last_name: LAST_NAME.into(),
            email_address: EMAIL.into(),
            final_target_url: "https://www.example.com".into(),
            ..VerifyRequest::default()
        };
        let started = app
            .verify
            .verify(traced(request, &trace_id, &caller_span))
            .await
            .unwrap()
            .into_inner();
        let id = started.correlation_id.clone();
        // The gateway had every value in hand: Prove received them all.
        let sent = app
            .sim
            .records()
            .last("/v3/verify")
            .unwrap()
            .body
            .clone()
            .unwrap();
        assert_eq!(sent["firstName"], FIRST_NAME);
        assert_eq!(sent["lastName"], LAST_NAME);
        assert_eq!(sent["emailAddress"], EMAIL);
        assert!(sent["phoneNumber"].as_str().unwrap().contains(VERIFY_PHONE));

        app.sim
            .complete_possession(&id, PossessionAction::Authenticate)
            .unwrap();
        let (_, status_caller_span) = new_ids();
        let status = app
            .verify
            .verify_status(traced(
                VerifyStatusRequest {
                    correlation_id: id.clone(),
                    ..VerifyStatusRequest::default()
                },
                &trace_id,
                &status_caller_span,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.success(), VerifyOutcome::Success);

        let verify_rpc = "prove.gateway.v1.VerifyService/Verify";
        let status_rpc = "prove.gateway.v1.VerifyService/VerifyStatus";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, verify_rpc).len() == 1
                && find(spans, SpanKind::Server, status_rpc).len() == 1
                && find(spans, SpanKind::Client, "POST /v3/verify").len() == 1
                && find(spans, SpanKind::Client, "POST /v3/verify-status").len() == 1
        })
        .await;
        let forbidden = [
            FIRST_NAME,
            LAST_NAME,
            EMAIL,
            VERIFY_PHONE,
            simulator::SIM_VERIFY_CLIENT_SECRET,
            started.auth_token.as_str(),
        ];
        let assert_clean = |text: &str, what: &str| {
            for value in forbidden.iter().filter(|v| !v.is_empty()) {
                assert!(!text.contains(value), "{what} contains {value:?}: {text}");
            }
            assert_nothing_secret(text, what, None);
        };
        for span in &spans {
            assert_clean(&span_text(span), "a span");
        }

        // Not vacuous: both RPCs wrote their line into this test's capture.
        let lines = own_logs().lines();
        let methods: BTreeSet<&str> = lines
            .iter()
            .filter(is_rpc_line)
            .filter(|l| l["correlation_id"] == id.as_str())
            .map(|l| l["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, BTreeSet::from([verify_rpc, status_rpc]));
        assert_clean(&own_logs().text(), "the logs");
    });
}
