//! Graceful shutdown: health turns NOT_SERVING, new calls are refused, calls in flight finish.

use std::process::Stdio;
use std::time::Duration;

use prove_gateway::grpc::pb::UnifyOutcome;
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::simulator::{self, Faults, SimulatorConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{connect, mobile_unify as unify, spawn_app_configured};
use crate::raw;

fn slow_simulator(latency: Duration) -> SimulatorConfig {
    SimulatorConfig {
        faults: Faults {
            latency,
            ..Faults::none()
        },
        ..SimulatorConfig::default()
    }
}

/// Starts the real binary, configured by `configure`, with PROVE_GATEWAY_LISTEN on a free
/// loopback port, and returns it with that port once it is serving. The binary binds the port
/// itself, so it cannot be handed a listener, and a port probed free can be taken by another
/// process before the binary binds it: the binary then exits naming PROVE_GATEWAY_LISTEN, and
/// another port is tried. Returning only after its "serving" log line (written once the port is
/// bound) makes sure the test then talks to this process, not to whoever holds the port (so
/// `configure` must keep the info log on stdout).
async fn spawn_binary_on_a_free_port(
    configure: impl Fn(&mut tokio::process::Command),
) -> (tokio::process::Child, u16) {
    for _ in 0..20 {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_prove-gateway"));
        configure(&mut command);
        let mut child = command
            .env("PROVE_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let mut log = String::new();
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.contains("prove-gateway serving") {
                // Keep reading both pipes so the binary never blocks on a full one.
                tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
                tokio::spawn(
                    async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await },
                );
                return (child, port);
            }
            log.push_str(&line);
            log.push('\n');
        }
        // Its stdout closed before it served: it exited.
        stderr.read_to_string(&mut log).await.unwrap();
        let exit = child.wait().await.unwrap();
        if log.contains("PROVE_GATEWAY_LISTEN") && log.contains("in use") {
            continue;
        }
        panic!("the binary exited ({exit}) before serving:\n{log}");
    }
    panic!("no free port for the binary after 20 tries");
}

#[tokio::test]
async fn shutdown_reports_not_serving_lets_calls_finish_and_refuses_new_ones() {
    let app = spawn_app_configured(slow_simulator(Duration::from_millis(600)), |settings| {
        settings.drain_timeout = Duration::from_secs(30);
    })
    .await;
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    let mut client = app.unify.clone();
    let in_flight = tokio::spawn(async move { client.unify(unify()).await });
    // The call is in flight once the simulator holds it (records are made on arrival).
    let sim = app.sim.clone();
    while sim.records().in_flight().count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let addr = app.addr;
    let asked = tokio::time::Instant::now();
    let stopping = tokio::spawn(app.stop());
    let status = tokio::time::timeout(Duration::from_secs(2), watch.next())
        .await
        .expect("health changes during drain")
        .unwrap()
        .unwrap();
    assert_eq!(status.status(), ServingStatus::NotServing);
    // The watch is a call of its own that never ends by itself: close it, so that the drain
    // waits for the Unify call only.
    drop(watch);

    let answer = in_flight
        .await
        .unwrap()
        .expect("the call in flight finishes");
    assert_eq!(answer.into_inner().success(), UnifyOutcome::Pending);

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    assert!(
        endpoint.connect().await.is_err(),
        "new connections are refused"
    );
    // A clean drain: run returns once the call is done, not at the 30 s drain timeout. (The
    // call had at most 600 ms left; 10 s is only there so that a hang fails instead of waiting.)
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the drain ends with the last call, long before the drain timeout")
        .unwrap()
        .expect("run returns Ok after draining");
    eprintln!(
        "clean drain took {:?} (drain timeout 30 s)",
        asked.elapsed()
    );
}

/// Runs the real binary against a slow simulator, sends SIGTERM while a call is in flight.
#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_and_exits_zero() {
    let sim = simulator::spawn(slow_simulator(Duration::from_millis(800)))
        .await
        .unwrap();
    let (mut child, port) = spawn_binary_on_a_free_port(|command| {
        command
            .env_clear()
            .env("PROVE_GATEWAY_METRICS_LISTEN", "127.0.0.1:0")
            .env("PROVE_GATEWAY_DRAIN_TIMEOUT", "5s")
            .env("PROVE_BASE_URL", sim.base_url())
            .env("PROVE_CLIENT_ID", simulator::SIM_UNIFY_CLIENT_ID)
            .env("PROVE_CLIENT_SECRET", simulator::SIM_UNIFY_CLIENT_SECRET)
            .env("PROVE_VERIFY_CLIENT_ID", simulator::SIM_VERIFY_CLIENT_ID)
            .env(
                "PROVE_VERIFY_CLIENT_SECRET",
                simulator::SIM_VERIFY_CLIENT_SECRET,
            );
    })
    .await;
    let channel = connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let mut health = HealthClient::new(channel.clone());
    let serving = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status(), ServingStatus::Serving);

    let mut client = UnifyServiceClient::new(channel);
    let in_flight = tokio::spawn(async move { client.unify(unify()).await });
    // SIGTERM once the simulator holds the call (records are made on arrival).
    while sim.records().in_flight().count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let answer = in_flight
        .await
        .unwrap()
        .expect("the call in flight finishes");
    assert_eq!(answer.into_inner().success(), UnifyOutcome::Pending);
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert_eq!(sim.records().count_status("/v3/unify", 200), 1);
}

#[tokio::test]
async fn during_the_shutdown_delay_health_is_not_serving_but_calls_are_still_served() {
    let app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        settings.shutdown_delay = Duration::from_millis(800);
        settings.drain_timeout = Duration::from_secs(1);
    })
    .await;
    let mut health = HealthClient::new(app.channel.clone());
    let mut client = app.unify.clone();
    let addr = app.addr;
    let stopping = tokio::spawn(app.stop());
    // Health turns NOT_SERVING as soon as the stop is seen; the 800 ms delay is still running
    // when it does (a failure to turn would end in the timeout, not pass).
    tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            let status = health
                .check(HealthCheckRequest::default())
                .await
                .unwrap()
                .into_inner();
            if status.status() == ServingStatus::NotServing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("health turns NOT_SERVING during the shutdown delay");
    client
        .unify(unify())
        .await
        .expect("still served during the delay");
    let fresh = connect(addr).await;
    UnifyServiceClient::new(fresh)
        .unify(unify())
        .await
        .expect("new connections too");

    stopping.await.unwrap().unwrap();
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    assert!(endpoint.connect().await.is_err(), "refused after the delay");
}

#[tokio::test]
async fn a_half_sent_call_does_not_hold_shutdown_until_the_drain_timeout() {
    let app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        settings.drain_timeout = Duration::from_secs(30);
    })
    .await;
    // Headers and part of a message, then nothing: a slow or stalled client.
    let (client, _driver) = raw::connect(app.addr).await;
    let mut client = client.ready().await.unwrap();
    let (answer, mut send) = client
        .send_request(raw::request(app.addr, raw::UNIFY, &[]), false)
        .unwrap();
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 100, 1, 2]), false)
        .unwrap();
    // The part-message must reach the server's handler, which no one outside can see.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let asked = tokio::time::Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("shutdown finishes long before the 30 s drain timeout");
    stopped.expect("run returns Ok");
    eprintln!(
        "shutdown with a half-sent call took {:?} (drain timeout 30 s)",
        asked.elapsed()
    );
    let status = tokio::time::timeout(Duration::from_secs(1), raw::status_of(answer))
        .await
        .expect("the half-sent call was answered");
    raw::assert_gateway_error(&status, tonic::Code::Internal, "MALFORMED_MESSAGE");
    drop(send);
}
