//! The monitoring that ships with Morsa holds together: the Prometheus alert rules in
//! deploy/prometheus pass `promtool check rules` and their own `promtool test rules` cases,
//! and every metric the rules and the Grafana dashboard use is documented in
//! docs/METRICS.md (whose names follow the conventions it states).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::metrics_doc;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `promtool ARGS` in deploy/prometheus; it must succeed.
fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(repository().join("deploy/prometheus"))
        .output()
        .unwrap_or_else(|error| {
            panic!("promtool cannot run ({error}): install Debian's `prometheus` (bash .ci/install-tools)")
        });
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_and_fire_as_their_tests_expect() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
}

#[test]
fn the_rules_and_the_dashboard_use_only_documented_metrics() {
    let documented = metrics_doc::documented();
    for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/morsa.json"] {
        let text = std::fs::read_to_string(repository().join(file)).unwrap();
        let used = metrics_doc::named_in(&text, &documented);
        assert!(!used.is_empty(), "{file} names no metric");
        let missing: Vec<&String> = used.iter().filter(|name| !documented.contains_key(*name)).collect();
        assert!(missing.is_empty(), "{file} uses metrics docs/METRICS.md does not document: {missing:?}");
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repository().join("deploy/grafana/morsa.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|panels| !panels.is_empty()));
}

#[test]
fn documented_names_follow_the_conventions() {
    let documented = metrics_doc::documented();
    assert!(documented.len() > 30, "{documented:?}");
    for (name, kind) in &documented {
        assert!(name.starts_with("morsa_"), "{name}");
        assert!(["counter", "gauge", "histogram"].contains(&kind.as_str()), "{name} has type {kind}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name}: counters, and only they, end in _total"
        );
    }
    assert!(metrics_doc::doc().contains("\n## Gateway\n"), "a Gateway section");
}
