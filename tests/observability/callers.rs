//! The caller on the RPC span and on the metrics (issue 15): a caller of the callers file is
//! named by its name, a refused call by the fixed `unauthenticated`, never by what it presented.

use super::*;
use crate::support::callers::{CallersMount, caller, callers_file, with_token};

const TOKEN: &str = "checkout-obs-tok-31c9d2";
const STRANGER: &str = "stranger-obs-tok-a07e55";

#[test]
fn the_rpc_span_and_the_metrics_name_the_caller() {
    run(async {
        let mount = CallersMount::new(&callers_file(&[caller(
            "checkout-obs",
            TOKEN,
            &["prove.gateway.v1.UnifyService/*"],
        )]));
        let path = mount.path();
        let mut app = spawn_gateway(SimulatorConfig::default(), move |settings| {
            settings.callers.file = Some(path);
        })
        .await;
        let (trace_id, parent) = new_ids();
        let mut request = traced(unify_request(PHONE), &trace_id, &parent);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        app.unify.unify(request).await.unwrap();
        let refused = app
            .unify
            .unify(with_token(unify_request(PHONE), STRANGER))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);

        let unify_rpc = "prove.gateway.v1.UnifyService/Unify";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, unify_rpc).len() == 1
        })
        .await;
        let server = find(&spans, SpanKind::Server, unify_rpc)[0];
        assert_eq!(attr(server, "caller").as_deref(), Some("checkout-obs"));

        let text = reqwest::get(format!("http://{}/metrics", world().await.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            format!(
                r#"prove_gateway_rpc_requests_total{{method="{unify_rpc}",code="OK",caller="checkout-obs"}} 1"#
            ),
            format!(
                r#"prove_gateway_rpc_duration_seconds_count{{method="{unify_rpc}",code="OK",caller="checkout-obs"}} 1"#
            ),
            format!(
                r#"prove_gateway_rpc_requests_total{{method="{unify_rpc}",code="UNAUTHENTICATED",caller="unauthenticated"}}"#
            ),
        ] {
            assert!(text.contains(&series), "{series} missing:\n{text}");
        }
        for secret in [TOKEN, STRANGER] {
            assert!(!text.contains(secret), "/metrics names {secret}");
        }
    });
}
