//! The Prometheus endpoint answers `GET /metrics` (and HEAD) only.
//!
//! `serve_metrics` installs the process-wide metrics recorder, so only this test in the binary
//! may call it.

use reqwest::StatusCode;

#[tokio::test]
async fn the_metrics_listener_serves_get_metrics_and_nothing_else() {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    prove_gateway::telemetry::serve_metrics(Some(addr)).unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let mut scrape = None;
    for _ in 0..100 {
        if let Ok(answer) = http.get(url("/metrics")).send().await {
            scrape = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let scrape = scrape.expect("the metrics endpoint accepts connections");
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(
        scrape
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
        "{scrape:?}"
    );
    let text = scrape.text().await.unwrap();
    assert!(
        text.contains("prove_gateway_rpc_requests_total"),
        "the zero series are registered: {text}"
    );

    let head = http.head(url("/metrics")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    for path in ["/", "/metric", "/metrics/x", "/favicon.ico", "/debug/pprof"] {
        let answer = http.get(url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "GET {path}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains("prove_gateway_"), "GET {path}: {body}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = http
            .request(method.clone(), url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} /metrics"
        );
        let body = answer.text().await.unwrap();
        assert!(
            !body.contains("prove_gateway_"),
            "{method} /metrics: {body}"
        );
    }
}
