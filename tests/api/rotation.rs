//! A client secret rotated on disk takes effect without a restart: the next token request
//! sends the new secret, and no call fails during the switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prove_gateway::config::{Credentials, Upstream};
use prove_gateway::prove::{ClientSecret, SecretFile};
use prove_gateway::simulator::{self, Credential, Product, SimulatorConfig};

use crate::helpers::support::callers::CallersMount;
use crate::helpers::{LogCapture, mobile_unify, spawn_app_configured};

const OLD: &str = "unify-secret-before-rotation";
const NEW: &str = "unify-secret-after-rotation";

/// What `/token` accepts: Unify with `secrets`, Verify with the sandbox's own.
fn accepting(secrets: &[&str]) -> Vec<Credential> {
    let mut accepted: Vec<Credential> = secrets
        .iter()
        .map(|secret| Credential::new(simulator::SIM_UNIFY_CLIENT_ID, *secret, Product::Unify))
        .collect();
    accepted.push(Credential::new(
        simulator::SIM_VERIFY_CLIENT_ID,
        simulator::SIM_VERIFY_CLIENT_SECRET,
        Product::Verify,
    ));
    accepted
}

#[tokio::test]
async fn a_rotated_secret_file_is_used_by_the_next_token_request_and_no_call_fails() {
    let logs = LogCapture::start();
    // Two-second tokens, refreshed halfway: several token requests while the test runs.
    let sim = SimulatorConfig {
        credentials: accepting(&[OLD]),
        token_ttl: Duration::from_secs(2),
        ..SimulatorConfig::default()
    };
    // The secret as Kubernetes mounts it (a symlink through `..data`, swapped on update); the
    // mount helper is the callers file's, whose mechanics are the same for any Secret.
    let mut mount = CallersMount::new(&format!("{OLD}\n"));
    let file = SecretFile {
        path: mount.path(),
        setting: "PROVE_UNIFY_CLIENT_SECRET_FILE".into(),
        // The default is 5 s; the mechanism is the same, the test shorter.
        interval: Duration::from_millis(100),
    };
    let app = spawn_app_configured(sim, |settings| {
        if let Upstream::Prove { unify, .. } = &mut settings.upstream {
            *unify = Credentials {
                client_id: simulator::SIM_UNIFY_CLIENT_ID.into(),
                client_secret: ClientSecret::from_file(OLD.to_owned().into(), file),
            };
        }
    })
    .await;

    // Twenty callers, calling until the test ends; every failure is kept.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (mut client, stop) = (app.unify.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut calls, mut failures) = (0, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    calls += 1;
                    if let Err(status) = client.unify(mobile_unify()).await {
                        failures.push(status);
                    }
                }
                (calls, failures)
            })
        })
        .collect();
    let records = || app.sim.records();
    let wait_until = async |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never: {what}");
    };
    wait_until("calls flow", &|| {
        records().count_status("/v3/unify", 200) >= 20
    })
    .await;

    // Prove's side first: the portal accepts both secrets while the new one is rolled out.
    app.sim.set_credentials(accepting(&[OLD, NEW]));
    mount.update(&format!("{NEW}\n"));
    logs.wait_for("the client secret file changed").await;
    // Then the old secret is revoked: from here a token request with it would get 401.
    app.sim.set_credentials(accepting(&[NEW]));
    let tokens_before = records().count_status("/token", 200);
    let calls_before = records().count_status("/v3/unify", 200);
    wait_until("a token request with the new secret", &|| {
        records().count_status("/token", 200) > tokens_before
    })
    .await;
    // And calls carry on with the new token.
    wait_until("calls with the new token", &|| {
        records().count_status("/v3/unify", 200) >= calls_before + 40
    })
    .await;

    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for caller in callers {
        let (calls, failures) = caller.await.unwrap();
        total += calls;
        assert!(failures.is_empty(), "calls failed: {failures:?}");
    }
    assert!(total >= 60, "{total} calls");
    assert_eq!(
        records().count_status("/token", 401),
        0,
        "the old secret was never refused"
    );
    let text = logs.text();
    assert!(
        !text.contains(OLD) && !text.contains(NEW),
        "a secret is logged"
    );
}
