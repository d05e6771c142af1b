//! Failures the gRPC layer itself produces, before any handler runs (undecodable bytes, an
//! oversize message, the caller's deadline), carry exactly one ErrorInfo like every other error.

use std::time::Duration;

use prove_gateway::grpc::pb::UnifyRequest;
use prove_gateway::simulator::{Faults, SimulatorConfig};
use tonic::Code;

use crate::helpers::{mobile_unify, spawn_app, spawn_app_configured};
use crate::raw::{UNIFY, assert_gateway_error, call, connect, frame, request, status_of};

#[tokio::test]
async fn undecodable_bytes_are_internal_with_malformed_message() {
    let app = spawn_app().await;
    let bodies = [
        // A well-framed message whose bytes are not a UnifyRequest (an invalid wire type).
        frame(&[0xff; 16]),
        // A string field holding bytes that are not UTF-8.
        frame(&[0x12, 0x02, 0xc3, 0x28]),
        // Not even a gRPC frame: an unknown compression flag.
        bytes::Bytes::from_static(b"hello, this is not protobuf"),
        // A frame cut short: the length says 100, ten bytes follow, the stream ends.
        bytes::Bytes::from_static(&[0, 0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    ];
    for body in bodies {
        let status = call(app.addr, UNIFY, &[], body.clone()).await;
        assert_gateway_error(&status, Code::Internal, "MALFORMED_MESSAGE");
        assert!(
            !status.message().is_empty(),
            "{body:?}: the message says what was wrong"
        );
    }
    assert_eq!(
        app.sim.records().count("/v3/unify"),
        0,
        "nothing reached Prove"
    );
}

#[tokio::test]
async fn an_oversize_message_is_resource_exhausted_with_message_too_large() {
    let app = spawn_app().await;
    // A real client, sending 5 MiB: above the 4 MiB every service accepts.
    let request = UnifyRequest {
        phone_number: "1".repeat(5 * 1024 * 1024),
        ..mobile_unify()
    };
    let status = app.unify.clone().unify(request).await.unwrap_err();
    assert_gateway_error(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");

    // Only the announced length counts: the server answers without reading the rest.
    let mut announced = vec![0u8, 0x7f, 0xff, 0xff, 0xff];
    announced.extend_from_slice(&[0; 64]);
    let status = call(app.addr, UNIFY, &[], announced.into()).await;
    assert_gateway_error(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
}

/// A simulator that answers after a second.
fn slow_simulator() -> SimulatorConfig {
    SimulatorConfig {
        faults: Faults {
            latency: Duration::from_secs(1),
            ..Faults::none()
        },
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn a_deadline_that_passes_before_the_message_arrives_is_caller_deadline_exceeded() {
    // Headers with a 200 ms deadline, then half a message and nothing more: no handler runs,
    // so only the server's own deadline can answer. A raw client, because tonic's client would
    // give up at the deadline itself and report CANCELLED.
    let app = spawn_app().await;
    let (client, _driver) = connect(app.addr).await;
    let mut client = client.ready().await.unwrap();
    let (answer, mut send) = client
        .send_request(request(app.addr, UNIFY, &[("grpc-timeout", "200m")]), false)
        .unwrap();
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 100, 1, 2]), false)
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), status_of(answer))
        .await
        .expect("answered soon after the deadline");
    assert_gateway_error(&status, Code::DeadlineExceeded, "CALLER_DEADLINE_EXCEEDED");
}

#[tokio::test]
async fn a_deadline_that_passes_while_prove_is_slow_is_deadline_exceeded_with_one_error_info() {
    // The caller's deadline passes while the gateway waits for Prove: the handler, which knows
    // the deadline, answers UPSTREAM_TIMEOUT (the request was sent, its outcome is unknown).
    // Before, tonic's own timer raced it and sometimes answered CANCELLED without details. (A
    // deadline too short for the rate limiter's wait is refused up front instead.)
    let app = spawn_app_configured(slow_simulator(), |_| {}).await;
    let body = frame(&prost::Message::encode_to_vec(&mobile_unify()));
    for timeout in ["200m", "150m", "100m", "250000u", "120m", "180m"] {
        let status = call(app.addr, UNIFY, &[("grpc-timeout", timeout)], body.clone()).await;
        assert_gateway_error(&status, Code::DeadlineExceeded, "UPSTREAM_TIMEOUT");
    }
}

#[tokio::test]
async fn absurd_or_garbage_deadlines_neither_break_the_call_nor_the_server() {
    let app = spawn_app().await;
    let body = frame(&prost::Message::encode_to_vec(&mobile_unify()));
    // The largest deadline gRPC can express, and values that are not deadlines at all.
    for timeout in [
        "99999999H",
        "99999999n",
        "nonsense",
        "-5m",
        "5",
        "123456789S",
        "5 m",
    ] {
        let status = call(app.addr, UNIFY, &[("grpc-timeout", timeout)], body.clone()).await;
        assert_eq!(
            status.code(),
            Code::Ok,
            "grpc-timeout {timeout}: {status:?}"
        );
    }
}
