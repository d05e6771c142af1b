//! Metrics: every documented metric is served on `/metrics` with its documented labels.

use super::*;

/// A scrape of `/metrics`: family types, and every sample's name and label names.
pub struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<(String, BTreeSet<String>)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap();
                let name = line[..end].to_owned();
                let labels = if line[end..].starts_with('{') {
                    label_names(&line[end + 1..])
                } else {
                    BTreeSet::new()
                };
                samples.push((name, labels));
            }
        }
        Self { types, samples }
    }

    pub fn has_sample(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _)| n == name)
    }

    /// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and `_count`
    /// series belong to the histogram.
    pub fn family<'a>(&self, name: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && self.types.get(base).is_some_and(|t| t == "histogram")
            {
                return base;
            }
        }
        name
    }
}

/// The label names of `a="x",b="y"}...` (values may hold escaped quotes).
pub fn label_names(mut rest: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    while !rest.starts_with('}') {
        let (name, after) = rest.split_once("=\"").unwrap();
        names.insert(name.trim_start_matches(',').to_owned());
        let mut escaped = false;
        let mut end = 0;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    names
}

pub fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The metrics table of `docs/observability.md`: name → (kind, label names).
pub fn documented_metrics() -> HashMap<String, (String, BTreeSet<String>)> {
    let doc = repo_file("docs/observability.md");
    let mut metrics = HashMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `prove_gateway_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let labels: BTreeSet<String> = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "none")
            .collect();
        metrics.insert(name, (cells[2].to_owned(), labels));
    }
    metrics
}

pub async fn scrape() -> Scrape {
    let url = format!("http://{}/metrics", world().await.metrics);
    let text = reqwest::get(&url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_nothing_secret(&text, "/metrics", None);
    Scrape::parse(&text)
}

#[test]
fn every_documented_metric_is_served_with_its_documented_labels() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let started = app
            .unify
            .unify(unify_request(PHONE))
            .await
            .unwrap()
            .into_inner();
        let _ = app
            .unify
            .unify_status(UnifyStatusRequest {
                correlation_id: started.correlation_id,
                client_request_id: String::new(),
            })
            .await;
        let _ = app.unify.unify(unify_request("")).await.unwrap_err();

        // The documentation lists exactly the catalogue the code registers.
        let documented = documented_metrics();
        let catalogue: HashMap<String, (String, BTreeSet<String>)> = METRICS
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    telemetry::metrics::Kind::Counter => "counter",
                    telemetry::metrics::Kind::Gauge => "gauge",
                    telemetry::metrics::Kind::Histogram => "histogram",
                };
                let labels = m.labels.iter().map(|l| (*l).to_owned()).collect();
                (m.name.to_owned(), (kind.to_owned(), labels))
            })
            .collect();
        assert_eq!(documented, catalogue, "docs/observability.md vs METRICS");

        let scrape = scrape().await;
        for (name, (kind, labels)) in &documented {
            assert_eq!(scrape.types.get(name), Some(kind), "# TYPE of {name}");
            let samples: Vec<&BTreeSet<String>> = scrape
                .samples
                .iter()
                .filter(|(n, _)| scrape.family(n) == name)
                .map(|(_, l)| l)
                .collect();
            assert!(!samples.is_empty(), "{name} has no series");
            for sample_labels in samples {
                let mut sample_labels = sample_labels.clone();
                sample_labels.remove("le");
                assert_eq!(&sample_labels, labels, "labels of {name}");
            }
        }
        // Series that must exist at 0 before anything goes wrong, so alerts see 0, not nothing.
        let text = reqwest::get(format!("http://{}/metrics", world().await.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            r#"prove_gateway_rate_limit_rejections_total{reason="queue_full"}"#,
            r#"prove_gateway_retries_skipped_total{endpoint="/v3/verify",reason="budget"}"#,
            r#"prove_gateway_rpc_requests_total{method="prove.gateway.v1.VerifyService/VerifyStatus",code="OK",caller="unauthenticated"}"#,
        ] {
            assert!(text.contains(series), "{series} missing");
        }
        assert!(text.contains(
            r#"prove_gateway_rpc_requests_total{method="prove.gateway.v1.UnifyService/Unify",code="INVALID_ARGUMENT",caller="anonymous"}"#
        ));
    });
}
