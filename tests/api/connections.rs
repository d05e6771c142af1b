//! The listener's limits, over real sockets: a cap on connections, and connections that never
//! speak HTTP/2, sit idle or stop answering pings are closed.
//!
//! The limits are set to a few hundred milliseconds; each wait below allows seconds, so a slow
//! machine cannot fail them, and a server without the limit fails them all.

use std::time::Duration;

use prove_gateway::config::Settings;
use prove_gateway::simulator::{Faults, SimulatorConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestApp, connect, mobile_unify, spawn_app_configured};

/// Far longer than any limit set below.
const PATIENCE: Duration = Duration::from_secs(5);

async fn app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_configured(SimulatorConfig::default(), configure).await
}

async fn serving(channel: &Channel) -> bool {
    let mut health = HealthClient::new(channel.clone());
    let check = health.check(HealthCheckRequest::default());
    matches!(
        tokio::time::timeout(PATIENCE, check).await,
        Ok(Ok(answer)) if answer.get_ref().status() == ServingStatus::Serving
    )
}

/// Reads until the server closes the connection (end of stream or reset); false if it is still
/// open after [`PATIENCE`].
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, until_closed).await.is_ok()
}

/// The client's HTTP/2 connection preface and an empty SETTINGS frame: a handshake, by hand.
const PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_while_the_first_ones_keep_working() {
    let app = app_with(|s| s.connections.max_connections = 3).await;
    // The app's own channel is the first connection.
    let second = connect(app.addr).await;
    let third = connect(app.addr).await;
    for channel in [&app.channel, &second, &third] {
        assert!(serving(channel).await);
    }

    let mut fourth = TcpStream::connect(app.addr).await.unwrap();
    let _ = fourth.write_all(PREFACE_AND_SETTINGS).await;
    assert!(
        closed_by_server(&mut fourth).await,
        "a connection beyond the cap is closed at once"
    );
    for channel in [&app.channel, &second, &third] {
        assert!(serving(channel).await, "the first three still work");
    }

    // Once two close, their places are free again.
    drop(second);
    drop(third);
    let mut served = false;
    for _ in 0..50 {
        let fresh = connect(app.addr).await;
        if serving(&fresh).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a new connection is served once others closed");
}

#[tokio::test]
async fn a_connection_that_never_sends_the_preface_is_closed_after_the_handshake_timeout() {
    let app = app_with(|s| {
        s.connections.handshake_timeout = Duration::from_millis(200);
        s.connections.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_by_server(&mut silent).await, "silent connection");

    // Half the preface is no better (slowloris).
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(&PREFACE_AND_SETTINGS[..10]).await.unwrap();
    assert!(closed_by_server(&mut slow).await, "half a preface");

    assert!(serving(&app.channel).await, "real clients are unaffected");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let app = app_with(|s| {
        s.connections.idle_timeout = Duration::from_millis(200);
        s.connections.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let (_client, driver) = crate::raw::connect(app.addr).await;
    tokio::time::timeout(PATIENCE, driver)
        .await
        .expect("the server closes an idle connection")
        .unwrap();
}

#[tokio::test]
async fn a_connection_with_a_call_in_flight_is_not_idle() {
    let slow = SimulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(400),
            ..Faults::none()
        },
        ..SimulatorConfig::default()
    };
    let app = spawn_app_configured(slow, |s| {
        s.connections.idle_timeout = Duration::from_millis(100);
    })
    .await;
    // A token fetch and the unify, 400 ms each: the call outlives the idle timeout many times.
    let channel = connect(app.addr).await;
    let mut client =
        prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient::new(channel);
    client
        .unify(mobile_unify())
        .await
        .expect("the call is not cut off");
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_disconnected() {
    let app = app_with(|s| {
        s.connections.keepalive_interval = Duration::from_millis(200);
        s.connections.keepalive_timeout = Duration::from_millis(200);
        s.connections.idle_timeout = Duration::from_secs(60);
        s.connections.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    // A handshake, then silence: the server's PING is never answered.
    let mut mute = TcpStream::connect(app.addr).await.unwrap();
    mute.write_all(PREFACE_AND_SETTINGS).await.unwrap();
    assert!(closed_by_server(&mut mute).await);
    assert!(
        serving(&app.channel).await,
        "a client that answers pings stays"
    );
}

#[tokio::test]
async fn the_stream_cap_is_announced_and_twenty_concurrent_calls_queue_for_it() {
    let app = app_with(|s| s.connections.max_concurrent_streams = 4).await;
    // The server's SETTINGS arrive before its first answer.
    let body = crate::raw::frame(&prost::Message::encode_to_vec(&mobile_unify()));
    let (client, _driver) = crate::raw::connect(app.addr).await;
    let mut client = client.ready().await.unwrap();
    let (answer, mut send) = client
        .send_request(crate::raw::request(app.addr, crate::raw::UNIFY, &[]), false)
        .unwrap();
    send.send_data(body, true).unwrap();
    assert_eq!(crate::raw::status_of(answer).await.code(), tonic::Code::Ok);
    assert_eq!(client.current_max_send_streams(), 4);

    // Twenty callers on one connection: the client holds back all but four, none fails.
    let calls = (0..20).map(|_| {
        let mut unify = app.unify.clone();
        async move { unify.unify(mobile_unify()).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}
