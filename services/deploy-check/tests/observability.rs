//! Alerts, metrics and the metrics pipeline of deploy/: every alert is
//! unit-tested firing and not firing (`promtool test rules`), Prometheus'
//! and Alertmanager's configurations are valid, every metric a rule or a
//! dashboard panel uses is one courier declares, and Prometheus, Tempo and
//! Alertmanager are wired together in compose.
//!
//! promtool and amtool come from Debian's `prometheus` and
//! `prometheus-alertmanager` packages (`scripts/install-promtool.sh`, which
//! CI runs). Without them these tests say so and pass, except on CI.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

// Shared by the test binaries; this one needs only the repository root.
#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo_root;
use courier_core::metrics::{self, Format};
use serde_yaml::Value;

fn deploy(path: &str) -> PathBuf {
    repo_root().join("deploy").join(path)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn files_in(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{extension} in {}", dir.display());
    files
}

fn rule_files() -> Vec<PathBuf> {
    files_in(&deploy("prometheus/rules"), "yml")
}

fn rule_test_files() -> Vec<PathBuf> {
    files_in(&deploy("prometheus/rules/tests"), "yml")
}

/// Runs `tool` with `args` in the repository; `None` when the tool is not
/// installed (and this is not CI, where it must be).
fn run(tool: &str, args: &[&str]) -> Option<String> {
    run_with_input(tool, args, "")
}

/// [`run`], with `input` on the tool's stdin.
fn run_with_input(tool: &str, args: &[&str], input: &str) -> Option<String> {
    let spawned = Command::new(tool)
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let output = match spawned.and_then(|mut child| {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input.as_bytes())?;
        child.wait_with_output()
    }) {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing on CI: run scripts/install-promtool.sh"
            );
            eprintln!("{tool} is not installed (scripts/install-promtool.sh): not checked");
            return None;
        }
        Err(error) => panic!("running {tool}: {error}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{tool} {args:?} failed:\n{said}");
    Some(said)
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_metric_passes_promtools_lint() {
    // HELP text, `_total` counters, units in names: Prometheus' conventions.
    if let Some(said) = run_with_input("promtool", &["check", "metrics"], &exposition()) {
        assert!(said.trim().is_empty(), "promtool check metrics:\n{said}");
    }
}

#[test]
fn every_alert_passes_its_promtool_unit_tests() {
    let tests: Vec<String> = rule_test_files().iter().map(|p| relative(p)).collect();
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    if let Some(said) = run("promtool", &args) {
        assert!(said.contains("SUCCESS"), "{said}");
    }
}

#[test]
fn prometheus_and_alertmanager_configurations_are_valid() {
    run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
    );
    run(
        "amtool",
        &["check-config", "deploy/alertmanager/alertmanager.yml"],
    );
}

fn alert_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in rule_files() {
        for group in yaml(&file)["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                if let Some(alert) = rule["alert"].as_str() {
                    names.insert(alert.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn every_alert_is_tested_both_firing_and_not_firing() {
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in rule_test_files() {
        for test in yaml(&file)["tests"].as_sequence().expect("tests") {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_owned();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                match expected {
                    0 => quiet.insert(name),
                    _ => firing.insert(name),
                };
            }
        }
    }
    for alert in alert_names() {
        assert!(firing.contains(&alert), "no test where {alert} fires");
        assert!(quiet.contains(&alert), "no test where {alert} stays quiet");
    }
}

/// What the services expose: each group declared, rendered as Prometheus'
/// text format.
fn exposition() -> String {
    metrics::bot();
    // Its methods are the sender's to know: one observation makes it show.
    metrics::sender()
        .telegram_request_duration
        .observe(["sendMessage", "free"], std::time::Duration::ZERO);
    // Per-campaign series show once there is a campaign.
    let projector = metrics::projector();
    projector.campaign_recipients.get(["c1", "remaining"]);
    projector.campaign_sending.get(["c1"]);
    metrics::loader();
    metrics::backlog();
    metrics::process("courier-test", "test");
    metrics::render(Format::PrometheusText)
}

/// Every name the services expose.
fn declared_series() -> BTreeSet<String> {
    exposition()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The metric names in a PromQL expression: identifiers outside label
/// matchers, strings and ranges, skipping functions, keywords and
/// recording rules (`a:b:c`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth = 0;
    let mut chars = expr.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' => {
                for (_, c) in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
            }
            c if depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                let mut end = at + c.len_utf8();
                while let Some(&(next, c)) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                        break;
                    }
                    end = next + c.len_utf8();
                    chars.next();
                }
                let word = &expr[at..end];
                let called = expr[end..].trim_start().starts_with('(');
                if !called && !word.contains(':') && word.contains('_') {
                    names.insert(word.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

fn dashboard_expressions() -> Vec<String> {
    fn collect(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                    into.push(expr.clone());
                }
                map.values().for_each(|v| collect(v, into));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
            _ => {}
        }
    }
    let mut expressions = Vec::new();
    for file in files_in(&deploy("grafana/dashboards"), "json") {
        let text = std::fs::read_to_string(&file).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        collect(&dashboard, &mut expressions);
    }
    expressions
}

fn rule_expressions() -> Vec<String> {
    let mut expressions = Vec::new();
    for file in rule_files() {
        for group in yaml(&file)["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                expressions.push(rule["expr"].as_str().expect("expr").to_owned());
            }
        }
    }
    expressions
}

#[test]
fn the_names_of_metrics_are_read_out_of_expressions() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.9, sum by (le, lane) (rate(courier_x_seconds_bucket{lane=~"free|paid"}[5m]))) / on () courier:y:ratio and up{job=~".*sender"} offset 15m"#
        ),
        BTreeSet::from(["courier_x_seconds_bucket".to_owned()])
    );
}

#[test]
fn every_metric_a_rule_or_panel_uses_is_declared_by_courier() {
    let declared = declared_series();
    // Prometheus' own series, and what Tempo's metrics generator writes.
    let foreign = |name: &str| {
        matches!(name, "up" | "process_start_time_seconds") || name.starts_with("traces_")
    };
    let mut used = BTreeSet::new();
    for expr in rule_expressions().iter().chain(&dashboard_expressions()) {
        used.extend(metric_names(expr));
    }
    for name in &used {
        assert!(
            declared.contains(name) || foreign(name),
            "{name} is used by a rule or panel but no service declares it"
        );
    }
    for histogram in [
        "courier_telegram_request_duration_seconds_bucket",
        "courier_recipient_wait_seconds_bucket",
        "courier_projector_batch_duration_seconds_bucket",
        "courier_loader_batch_duration_seconds_bucket",
        "courier_bot_update_duration_seconds_bucket",
        "courier_bot_updates_total",
        "courier_bot_update_errors_total",
    ] {
        assert!(used.contains(histogram), "no panel shows {histogram}");
    }
}

#[test]
fn latency_panels_show_exemplars_that_open_tempo() {
    let text = std::fs::read_to_string(deploy("grafana/dashboards/courier.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if target["expr"]
                .as_str()
                .is_some_and(|e| e.contains("_seconds_bucket"))
            {
                assert_eq!(target["exemplar"], true, "{}", panel["title"]);
            }
        }
    }
    let sources = yaml(&deploy("grafana/provisioning/datasources/datasources.yaml"));
    let prometheus = sources["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["uid"] == "prometheus")
        .unwrap();
    let destination = &prometheus["jsonData"]["exemplarTraceIdDestinations"][0];
    assert_eq!(destination["name"], "trace_id", "the exemplars' label");
    assert_eq!(destination["datasourceUid"], "tempo");
}

#[test]
fn prometheus_loads_the_rules_alerts_alertmanager_and_receives_tempos_metrics() {
    let compose = yaml(&deploy("docker-compose.yml"));
    let services = &compose["services"];
    let prometheus = &services["prometheus"];
    let flags: Vec<&str> = prometheus["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(flags.contains(&"--enable-feature=exemplar-storage"));
    assert!(flags.contains(&"--web.enable-remote-write-receiver"));
    let mounts: Vec<&str> = prometheus["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(mounts.contains(&"./prometheus/rules:/etc/prometheus/rules:ro"));

    let config = yaml(&deploy("prometheus/prometheus.yml"));
    assert_eq!(config["rule_files"][0], "rules/*.yml");
    let alertmanager = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    let (host, port) = alertmanager.split_once(':').unwrap();
    assert!(services[host].is_mapping(), "compose runs {host}");
    assert_eq!(port, "9093");
    assert!(
        services[host]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m == "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro")
    );

    let tempo = yaml(&deploy("tempo/tempo.yaml"));
    let generator = &tempo["metrics_generator"];
    assert_eq!(
        generator["storage"]["remote_write"][0]["url"],
        "http://prometheus:9090/api/v1/write"
    );
    assert_eq!(
        generator["storage"]["remote_write"][0]["send_exemplars"],
        true
    );
    let processors: Vec<&str> = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(processors, ["service-graphs", "span-metrics"]);
    // The generator's files live on Tempo's volume.
    for path in [
        generator["storage"]["path"].as_str().unwrap(),
        generator["traces_storage"]["path"].as_str().unwrap(),
    ] {
        assert!(path.starts_with("/var/tempo/"), "{path}");
    }
}
