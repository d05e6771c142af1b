//! The dashboard: every query names a served series, and correlation IDs link to traces.

use super::*;
use crate::metrics::{repo_file, scrape};

/// Metric names in a PromQL expression or a variable query.
fn metric_names(expr: &str) -> Vec<String> {
    let re = regex_lite::Regex::new(r"\bprove_gateway_[a-zA-Z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

#[test]
fn every_dashboard_query_names_a_served_series_and_correlation_ids_link_to_traces() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        app.unify.unify(unify_request(PHONE)).await.unwrap();
        let scrape = scrape().await;
        let catalogue: BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();

        let dashboard: serde_json::Value =
            serde_json::from_str(&repo_file("dashboards/prove-gateway.json")).unwrap();
        let mut queries = Vec::new();
        collect_queries(&dashboard, &mut queries);
        let prometheus: Vec<&String> = queries
            .iter()
            .filter(|(source, _)| source == "prometheus")
            .map(|(_, expr)| expr)
            .collect();
        assert!(prometheus.len() >= 8, "{queries:#?}");
        let mut used = BTreeSet::new();
        for expr in prometheus {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "query names no gateway metric: {expr}");
            for name in names {
                assert!(scrape.has_sample(&name), "{name} (in {expr}) is not served");
                let family = scrape.family(&name);
                assert!(catalogue.contains(family), "{family} is not documented");
                used.insert(family.to_owned());
            }
        }
        assert_eq!(
            used,
            catalogue.iter().map(|s| (*s).to_owned()).collect(),
            "the dashboard shows every metric"
        );

        // A correlation ID leads to its traces: a variable, and links to a trace search on
        // the span attribute.
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(variables.contains(&"correlation_id"), "{variables:?}");
        let text = dashboard.to_string();
        assert!(text.contains("span.prove.correlation_id"));
        assert!(text.contains("${correlation_id}") || text.contains("$correlation_id"));
        assert!(
            text.contains("${__value.raw}"),
            "a data link from a log's ID"
        );
    });
}

/// Every (datasource type, query) of the dashboard: panel targets' `expr`, and the queries of
/// template variables. A target without its own datasource inherits its panel's.
fn collect_queries(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    fn source_type(v: &serde_json::Value) -> Option<String> {
        v.get("datasource")
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
    }
    match value {
        serde_json::Value::Object(map) => {
            if let Some(targets) = map.get("targets").and_then(|t| t.as_array()) {
                let panel_source = source_type(value);
                for target in targets {
                    if let Some(expr) = target.get("expr").and_then(|e| e.as_str()) {
                        let source = source_type(target)
                            .or_else(|| panel_source.clone())
                            .expect("every query names its datasource type");
                        out.push((source, expr.to_owned()));
                    }
                }
            }
            if map.get("type").and_then(|t| t.as_str()) == Some("query")
                && let Some(source) = source_type(value)
            {
                let query = match map.get("query") {
                    Some(serde_json::Value::String(q)) => Some(q.clone()),
                    Some(q) => q.get("query").and_then(|q| q.as_str()).map(str::to_owned),
                    None => None,
                };
                if let Some(query) = query {
                    out.push((source, query));
                }
            }
            for child in map.values() {
                collect_queries(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_queries(item, out);
            }
        }
        _ => {}
    }
}
