//! The embedded simulator announces itself: its answers carry `prove-gateway-simulated: true`,
//! the metric `prove_gateway_simulated` is 1 and the start says so at WARN. A real upstream's
//! answers carry no such mark.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use prove_gateway::config::Upstream;
use prove_gateway::grpc::pb::PossessionType;
use prove_gateway::simulator::{self, SimulatorConfig};
use tokio::io::AsyncBufReadExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestApp, mobile_unify, spawn_app, spawn_app_configured, unify_request};
use crate::raw;

const HEADER: &str = "prove-gateway-simulated";

/// A gateway answering from its embedded simulator (the fixture's own simulator stays idle).
async fn simulated_gateway() -> TestApp {
    spawn_app_configured(SimulatorConfig::default(), |settings| {
        settings.upstream = Upstream::Simulator {
            listen: "127.0.0.1:0".parse().unwrap(),
        };
    })
    .await
}

/// An invalid Unify (no phone number), sent with a bare HTTP/2 client: the answer's header
/// block, and whether it ended the stream (a trailers-only answer).
async fn invalid_unify_headers(addr: SocketAddr) -> (http::HeaderMap, bool) {
    let (client, _driver) = raw::connect(addr).await;
    let mut client = client.ready().await.unwrap();
    let (answer, mut send) = client
        .send_request(raw::request(addr, raw::UNIFY, &[]), false)
        .unwrap();
    send.send_data(raw::frame(&[]), true).unwrap();
    let (parts, body) = answer.await.unwrap().into_parts();
    (parts.headers, body.is_end_stream())
}

#[tokio::test]
async fn a_unify_answered_by_the_simulator_carries_the_mark_in_headers_and_error_trailers() {
    let mut app = simulated_gateway().await;
    let answer = app.unify.unify(mobile_unify()).await.unwrap();
    assert_eq!(
        answer.metadata().get(HEADER).map(|v| v.to_str().unwrap()),
        Some("true"),
        "{:?}",
        answer.metadata()
    );
    assert_eq!(
        app.sim.records().count("/v3/unify"),
        0,
        "the embedded simulator answered, not the fixture's"
    );

    // An error: tonic sees the mark in the status's metadata...
    let status = app
        .unify
        .unify(unify_request(PossessionType::Mobile, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.metadata().get(HEADER).map(|v| v.to_str().unwrap()),
        Some("true"),
        "{status:?}"
    );
    // ...because it is in the one header block of a trailers-only answer, beside grpc-status.
    let (headers, ended) = invalid_unify_headers(app.addr).await;
    assert!(ended, "a trailers-only answer: {headers:?}");
    assert_eq!(headers.get("grpc-status").unwrap(), "3");
    assert_eq!(headers.get(HEADER).unwrap(), "true");

    // Health is the gateway's own answer, not Prove's: unmarked.
    let health = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert!(health.metadata().get(HEADER).is_none());
}

#[tokio::test]
async fn a_unify_answered_by_a_real_upstream_carries_no_mark() {
    // Upstream::Prove, at a simulator of its own over HTTP: what the gateway does with Prove.
    let mut app = spawn_app().await;
    let answer = app.unify.unify(mobile_unify()).await.unwrap();
    assert!(
        answer.metadata().get(HEADER).is_none(),
        "{:?}",
        answer.metadata()
    );
    assert_eq!(app.sim.records().count("/v3/unify"), 1, "Prove answered");
    let status = app
        .unify
        .unify(unify_request(PossessionType::Mobile, ""))
        .await
        .unwrap_err();
    assert!(status.metadata().get(HEADER).is_none(), "{status:?}");
    let (headers, _) = invalid_unify_headers(app.addr).await;
    assert!(headers.get(HEADER).is_none(), "{headers:?}");
}

/// The binary, started with `env` on probed free ports; its stdout lines are collected.
struct Binary {
    child: tokio::process::Child,
    listen: SocketAddr,
    metrics: SocketAddr,
    lines: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Binary {
    async fn start(env: &[(&str, &str)]) -> Self {
        // A probed port can be taken before the binary binds it; then it exits and the next
        // pair is tried.
        for _ in 0..20 {
            let [listen, metrics] = [(); 2].map(|()| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
            });
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_prove-gateway"))
                .env_clear()
                .env("PROVE_GATEWAY_LISTEN", listen.to_string())
                .env("PROVE_GATEWAY_METRICS_LISTEN", metrics.to_string())
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let lines = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let collected = lines.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    collected.lock().push(line);
                }
            });
            let mut binary = Self {
                child,
                listen,
                metrics,
                lines,
            };
            // Up to 10 s for the start (a loaded machine); it is done once the gauge is served.
            for _ in 0..500 {
                if binary.gauge().await.is_some() {
                    return binary;
                }
                if let Ok(Some(_)) = binary.child.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("the binary did not serve its metrics");
    }

    /// The value of `prove_gateway_simulated` once the server has set it, with the line.
    async fn gauge(&self) -> Option<String> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with("prove_gateway_simulated "))
            .filter(|_| self.log().contains("prove-gateway serving"))
            .map(|l| l.trim_start_matches("prove_gateway_simulated ").to_owned())
    }

    fn log(&self) -> String {
        self.lines.lock().join("\n")
    }
}

#[tokio::test]
async fn the_binary_on_its_simulator_warns_and_sets_the_gauge_and_with_prove_does_not() {
    let simulated = Binary::start(&[]).await;
    // The server sets the gauge once the simulator answers; the zero series comes first.
    let mut value = simulated.gauge().await;
    for _ in 0..500 {
        if value.as_deref() == Some("1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        value = simulated.gauge().await;
    }
    assert_eq!(value.as_deref(), Some("1"));
    let log = simulated.log();
    let warning = log
        .lines()
        .find(|l| l.contains("answers are SIMULATED"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("no person is verified"), "{warning}");

    // The binary in front of a simulator of its own, as Prove: no warning, 0.
    let prove = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let real = Binary::start(&[
        ("PROVE_BASE_URL", &prove.base_url()),
        ("PROVE_CLIENT_ID", simulator::SIM_UNIFY_CLIENT_ID),
        ("PROVE_CLIENT_SECRET", simulator::SIM_UNIFY_CLIENT_SECRET),
        ("PROVE_VERIFY_CLIENT_ID", simulator::SIM_VERIFY_CLIENT_ID),
        (
            "PROVE_VERIFY_CLIENT_SECRET",
            simulator::SIM_VERIFY_CLIENT_SECRET,
        ),
    ])
    .await;
    // The gauge is set before health is: once health answers, the value read is the server's.
    let mut health = HealthClient::new(crate::helpers::connect(real.listen).await);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(real.gauge().await.as_deref(), Some("0"));
    assert!(!real.log().contains("SIMULATED"), "{}", real.log());
}
