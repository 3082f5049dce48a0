//! Static checks of deploy/ (there is no Docker engine or cluster here):
//! every file parses, every path and name one file takes from another
//! exists, and the pieces agree with each other and with the code (binary
//! names, ports, NATS users, metric names, the KEDA target).
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml::Value;

use common::{AUTHORIZATION, nats_users, password, repo_root};

/// The long-running services the deployments run.
const SERVICES: [&str; 4] = ["projector", "loader", "sender", "bot"];

/// Every metric the dashboard must show (README "For SREs" explains them).
const METRICS: [&str; 12] = [
    "courier_sends_total",
    "courier_send_failures_total",
    "courier_telegram_429_total",
    "courier_send_rate_limit",
    "courier_sends_in_flight",
    "courier_sends_in_flight_limit",
    "courier_consumer_pending",
    "courier_consumer_redelivered",
    "courier_projector_lag",
    "courier_projector_applied_total",
    "courier_campaigns",
    "courier_campaign_recipients",
];

fn deploy() -> PathBuf {
    repo_root().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML file (or one of its documents) with `<<` merge keys applied.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn yaml(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{} has one document", path.display());
    documents.remove(0)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Binaries the image ships: the `target/release/<name>` the Dockerfile copies.
fn image_binaries() -> BTreeSet<String> {
    read(&deploy().join("Dockerfile"))
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("target/release/"))
        .map(str::to_owned)
        .collect()
}

fn compose() -> Value {
    yaml(&deploy().join("docker-compose.yml"))
}

fn compose_services() -> serde_yaml::Mapping {
    compose()["services"]
        .as_mapping()
        .expect("compose has services")
        .clone()
}

/// A compose service's environment as a map (either YAML form).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
                };
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| item.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The command a compose service or Kubernetes container runs, as a list.
fn command(service: &Value) -> Vec<String> {
    let mut command = strings(service.get("entrypoint"));
    command.extend(strings(service.get("command")));
    command
}

#[test]
fn the_compose_file_names_only_paths_and_services_that_exist() {
    let compose = compose();
    let services = compose_services();
    let volumes = compose["volumes"].as_mapping().cloned().unwrap_or_default();
    for (name, service) in &services {
        let name = name.as_str().unwrap();
        if let Some(build) = service.get("build") {
            let (context, dockerfile) = match build {
                Value::String(context) => (context.as_str(), "Dockerfile"),
                build => (
                    build["context"].as_str().unwrap_or("."),
                    build["dockerfile"].as_str().unwrap_or("Dockerfile"),
                ),
            };
            let context = deploy().join(context);
            assert!(context.is_dir(), "{name}: build context {context:?}");
            assert!(context.join(dockerfile).is_file(), "{name}: {dockerfile}");
        }
        for mount in service
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let source = match mount {
                Value::String(short) => short.split(':').next().unwrap().to_owned(),
                long => long["source"].as_str().unwrap_or_default().to_owned(),
            };
            if source.starts_with('.') || source.starts_with('/') {
                let path = deploy().join(&source);
                assert!(
                    path.exists(),
                    "{name} mounts {source}, which does not exist"
                );
            } else {
                assert!(
                    volumes.contains_key(source.as_str()),
                    "{name} mounts volume {source}, which is not declared"
                );
            }
        }
        let depends_on: Vec<String> = match service.get("depends_on") {
            Some(Value::Mapping(map)) => {
                map.keys().map(|k| k.as_str().unwrap().to_owned()).collect()
            }
            other => strings(other),
        };
        for dependency in depends_on {
            assert!(
                services.contains_key(dependency.as_str()),
                "{name} depends on {dependency}"
            );
        }
    }
}

#[test]
fn compose_runs_every_service_from_the_one_image_against_the_3_node_cluster() {
    let services = compose_services();
    let binaries = image_binaries();
    let nats_nodes: Vec<&str> = ["nats-1", "nats-2", "nats-3"].into();
    for node in &nats_nodes {
        assert!(services.contains_key(*node), "compose has {node}");
    }
    for name in SERVICES.iter().chain(&["courierctl"]) {
        let service = &services[*name];
        let binary = &command(service)[0];
        assert!(
            binaries.contains(binary),
            "{name} runs {binary}, not in the image"
        );
        assert_eq!(service["image"].as_str(), Some("courier:local"), "{name}");
        let env = environment(service);
        assert_eq!(env["COURIER_STREAM_REPLICAS"], "3", "{name}");
        assert_eq!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://tempo:4317",
            "{name}"
        );
        assert_eq!(env["METRICS_ADDR"], "0.0.0.0:9090", "{name}");
        // Every node, each URL carrying this service's own user.
        let user = if *name == "courierctl" {
            "courierctl"
        } else {
            name
        };
        let urls: Vec<&str> = env["NATS_URL"].split(',').collect();
        let expected: Vec<String> = nats_nodes
            .iter()
            .map(|node| format!("nats://{user}:{}@{node}:4222", password(user)))
            .collect();
        assert_eq!(urls, expected, "{name}'s NATS_URL");
    }
    let sandbox = &services["telegram-sandbox"];
    assert!(binaries.contains(&command(sandbox)[0]));
    let env = environment(&services["sender"]);
    assert!(env["TELEGRAM_API_URL"].contains("http://telegram-sandbox:8081"));
    // `--scale sender=N` needs no fixed container name and no host port.
    let sender = &services["sender"];
    assert!(sender.get("container_name").is_none());
    assert!(sender.get("ports").is_none());
}

#[test]
fn the_cluster_configuration_matches_the_compose_nodes() {
    let config = read(&deploy().join("nats/cluster.conf"));
    for node in ["nats-1", "nats-2", "nats-3"] {
        assert!(
            config.contains(&format!("nats-route://{node}:6222")),
            "cluster.conf routes to {node}"
        );
    }
    assert!(config.contains("include \"authorization.conf\""));
    let local = read(&repo_root().join("nats.conf"));
    assert!(local.contains(&format!("include \"{AUTHORIZATION}\"")));
    let services = compose_services();
    for node in ["nats-1", "nats-2", "nats-3"] {
        let mounts = strings(services[node].get("volumes"));
        for file in ["cluster.conf", "authorization.conf"] {
            assert!(
                mounts.contains(&format!("./nats/{file}:/etc/nats/{file}:ro")),
                "{node} mounts {file}"
            );
        }
    }
    let users: BTreeSet<String> = nats_users().into_iter().map(|(user, _)| user).collect();
    let expected: BTreeSet<String> = SERVICES
        .iter()
        .chain(&["courierctl"])
        .map(|s| s.to_string())
        .collect();
    assert_eq!(users, expected, "one NATS user per service");
}

#[test]
fn tempo_receives_otlp_grpc_where_the_services_send_it() {
    let tempo = yaml(&deploy().join("tempo/tempo.yaml"));
    assert_eq!(
        str_at(
            &tempo,
            &[
                "distributor",
                "receivers",
                "otlp",
                "protocols",
                "grpc",
                "endpoint"
            ]
        ),
        Some("0.0.0.0:4317")
    );
    let mounts = strings(compose_services()["tempo"].get("volumes"));
    assert!(mounts.contains(&"./tempo/tempo.yaml:/etc/tempo/tempo.yaml:ro".to_owned()));
}

#[test]
fn prometheus_scrapes_every_service_on_its_metrics_port() {
    let prometheus = yaml(&deploy().join("prometheus/prometheus.yml"));
    let jobs = prometheus["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    for service in SERVICES {
        let found = jobs.iter().any(|job| {
            job["dns_sd_configs"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|sd| {
                    strings(sd.get("names")).contains(&service.to_owned())
                        && sd["port"].as_u64() == Some(9090)
                })
        });
        assert!(found, "Prometheus scrapes {service}:9090");
    }
    let mounts = strings(compose_services()["prometheus"].get("volumes"));
    assert!(
        mounts.contains(&"./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro".into())
    );
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel.clone());
        all.extend(panels(panel));
    }
    all
}

#[test]
fn grafana_is_provisioned_with_prometheus_tempo_and_the_dashboards() {
    let sources = yaml(&deploy().join("grafana/provisioning/datasources/datasources.yaml"));
    let sources: BTreeMap<String, String> = sources["datasources"]
        .as_sequence()
        .expect("datasources")
        .iter()
        .map(|s| {
            (
                s["uid"].as_str().unwrap().to_owned(),
                s["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sources.get("prometheus").map(String::as_str),
        Some("prometheus")
    );
    assert_eq!(sources.get("tempo").map(String::as_str), Some("tempo"));

    let providers = yaml(&deploy().join("grafana/provisioning/dashboards/dashboards.yaml"));
    let path = str_at(&providers["providers"][0], &["options", "path"]).expect("a path");
    let mounts = strings(compose_services()["grafana"].get("volumes"));
    assert!(mounts.contains(&format!("./grafana/dashboards:{path}:ro")));
    assert!(mounts.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro".into()));

    // Every data source a dashboard names is provisioned.
    for file in dashboard_files() {
        let dashboard: serde_json::Value = serde_json::from_str(&read(&file)).unwrap();
        let text = dashboard.to_string();
        for uid in text.split("\"uid\":\"").skip(1) {
            let uid = uid.split('"').next().unwrap();
            if uid != dashboard["uid"].as_str().unwrap_or_default() {
                assert!(sources.contains_key(uid), "{file:?} uses data source {uid}");
            }
        }
    }
}

fn dashboard_files() -> Vec<PathBuf> {
    let files: Vec<PathBuf> = std::fs::read_dir(deploy().join("grafana/dashboards"))
        .expect("deploy/grafana/dashboards")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!files.is_empty(), "no dashboards");
    files
}

#[test]
fn the_dashboard_shows_every_topic_and_metric_and_links_to_traces() {
    let mut titles = Vec::new();
    let mut expressions = Vec::new();
    let mut tempo = false;
    for file in dashboard_files() {
        let dashboard: serde_json::Value = serde_json::from_str(&read(&file))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
        for panel in panels(&dashboard) {
            titles.push(panel["title"].as_str().unwrap_or_default().to_lowercase());
            for target in panel["targets"].as_array().into_iter().flatten() {
                expressions.push(target["expr"].as_str().unwrap_or_default().to_owned());
            }
            tempo |= panel["datasource"]["uid"] == "tempo";
        }
        tempo &= dashboard["links"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|link| link["url"].as_str().is_some_and(|u| u.contains("tempo")));
    }
    for topic in [
        "campaign progress",
        "send rate vs limit",
        "errors by class",
        "429",
        "consumer pending",
        "redeliver",
        "projector lag",
        "campaigns by status",
        "traces",
    ] {
        assert!(
            titles.iter().any(|title| title.contains(topic)),
            "no panel about {topic:?} in {titles:?}"
        );
    }
    for metric in METRICS {
        let used = expressions.iter().any(|expr| {
            expr.match_indices(metric).any(|(at, _)| {
                // The whole name, not a prefix of a longer one.
                let next = expr[at + metric.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        });
        assert!(used, "no panel queries {metric}");
    }
    assert!(tempo, "a Tempo panel and a dashboard link to traces");
}

fn kubernetes_documents() -> Vec<(PathBuf, Value)> {
    let mut documents = Vec::new();
    for entry in std::fs::read_dir(deploy().join("k8s")).expect("deploy/k8s") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for document in yaml_documents(&path) {
                documents.push((path.clone(), document));
            }
        }
    }
    documents
}

fn of_kind<'a>(documents: &'a [(PathBuf, Value)], kind: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn kubernetes_manifests_parse_name_themselves_and_are_all_applied() {
    let documents = kubernetes_documents();
    let kustomization = of_kind(&documents, "Kustomization");
    assert_eq!(kustomization.len(), 1);
    let resources = strings(kustomization[0].get("resources"));
    for (path, document) in &documents {
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(document["apiVersion"].is_string(), "{file}: apiVersion");
        assert!(document["kind"].is_string(), "{file}: kind");
        if document["kind"] != "Kustomization" {
            assert!(
                str_at(document, &["metadata", "name"]).is_some(),
                "{file}: metadata.name"
            );
            assert!(
                resources.contains(&file.to_owned()),
                "{file} is not applied"
            );
        }
    }
    for resource in &resources {
        assert!(deploy().join("k8s").join(resource).is_file(), "{resource}");
    }
}

/// The Deployment whose container runs `courier-<service>`.
fn deployment<'a>(documents: &'a [(PathBuf, Value)], service: &str) -> &'a Value {
    of_kind(documents, "Deployment")
        .into_iter()
        .find(|d| {
            command(&d["spec"]["template"]["spec"]["containers"][0])
                .first()
                .is_some_and(|c| *c == format!("courier-{service}"))
        })
        .unwrap_or_else(|| panic!("no Deployment runs courier-{service}"))
}

#[test]
fn keda_scales_the_sender_deployment_on_the_senders_consumer_of_the_work_stream() {
    let documents = kubernetes_documents();
    let sender = deployment(&documents, "sender");
    let scaled = of_kind(&documents, "ScaledObject");
    assert_eq!(scaled.len(), 1);
    let scaled = scaled[0];
    assert_eq!(
        str_at(scaled, &["spec", "scaleTargetRef", "name"]),
        str_at(sender, &["metadata", "name"])
    );
    // KEDA owns the replica count.
    assert!(sender["spec"].get("replicas").is_none());
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "nats-jetstream");
    let metadata = &trigger["metadata"];
    assert_eq!(metadata["stream"], "COURIER_WORK");
    assert_eq!(metadata["consumer"], "senders");
    assert!(metadata["account"].is_string());
    let endpoint = metadata["natsServerMonitoringEndpoint"].as_str().unwrap();
    assert!(endpoint.ends_with(":8222"), "{endpoint}");
    let threshold: u64 = metadata["lagThreshold"].as_str().unwrap().parse().unwrap();
    assert!(threshold > 0);
}

#[test]
fn kubernetes_deployments_run_the_services_with_their_configuration() {
    let documents = kubernetes_documents();
    let binaries = image_binaries();
    let data = |kind: &str, name: &str| -> BTreeSet<String> {
        of_kind(&documents, kind)
            .into_iter()
            .filter(|d| str_at(d, &["metadata", "name"]) == Some(name))
            .flat_map(|d| {
                let data = d.get("stringData").or(d.get("data")).unwrap();
                data.as_mapping()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let config = of_kind(&documents, "ConfigMap")[0];
    assert_eq!(config["data"]["COURIER_STREAM_REPLICAS"], "3");
    assert_eq!(config["data"]["METRICS_ADDR"], "0.0.0.0:9090");
    assert!(config["data"]["NATS_URL"].is_string());
    for service in SERVICES {
        let deployment = deployment(&documents, service);
        let pod = &deployment["spec"]["template"];
        let container = &pod["spec"]["containers"][0];
        assert!(binaries.contains(&command(container)[0]));
        for source in container["envFrom"].as_sequence().unwrap() {
            let name = str_at(source, &["configMapRef", "name"]).unwrap();
            assert!(!data("ConfigMap", name).is_empty(), "{service}: {name}");
        }
        let mut secrets = BTreeSet::new();
        for variable in container["env"].as_sequence().unwrap() {
            if let Some(reference) = variable
                .get("valueFrom")
                .and_then(|v| v.get("secretKeyRef"))
            {
                let (name, key) = (
                    reference["name"].as_str().unwrap(),
                    reference["key"].as_str().unwrap(),
                );
                assert!(
                    data("Secret", name).contains(key),
                    "{service}: {name}/{key}"
                );
                secrets.insert(variable["name"].as_str().unwrap().to_owned());
            }
        }
        // The bot token goes only where Telegram is called.
        assert_eq!(
            secrets.contains("TELEGRAM_BOT_TOKEN"),
            matches!(service, "sender" | "bot"),
            "{service}"
        );
        // Sealed bot tokens open only in courierctl and the services that
        // act as the bots: senders and the bot service (docs/decisions/0016).
        assert_eq!(
            secrets.contains("COURIER_TOKEN_KEY"),
            matches!(service, "sender" | "bot"),
            "{service}"
        );
        // Senders know campaigns from the event stream, not Postgres.
        assert_eq!(
            secrets.contains("DATABASE_URL"),
            service != "sender",
            "{service}"
        );
        // Its own NATS creds file, and no other service's.
        let creds = container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "NATS_CREDS")
            .and_then(|v| v["value"].as_str())
            .unwrap_or_else(|| panic!("{service}: NATS_CREDS"));
        let (directory, file) = creds.rsplit_once('/').unwrap();
        let mount = container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == directory)
            .unwrap_or_else(|| panic!("{service}: nothing mounted at {directory}"));
        let volume = pod["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let secret = str_at(volume, &["secret", "secretName"]).unwrap();
        let items = volume["secret"]["items"].as_sequence().unwrap();
        assert_eq!(items.len(), 1, "{service} mounts only its own creds");
        let key = items[0]["key"].as_str().unwrap();
        assert_eq!(key, format!("{service}.creds"));
        assert_eq!(items[0]["path"].as_str(), Some(file));
        assert!(
            data("Secret", secret).contains(key),
            "{service}: {secret}/{key}"
        );
        assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(9090));
        let probe = |name: &str| str_at(&container[name], &["httpGet", "path"]);
        assert_eq!(probe("livenessProbe"), Some("/healthz"));
        assert_eq!(probe("readinessProbe"), Some("/readyz"));

        // A metrics Service selects this Deployment's pods.
        let labels = pod["metadata"]["labels"].as_mapping().unwrap();
        let service_found = of_kind(&documents, "Service").into_iter().any(|s| {
            let selector = s["spec"]["selector"].as_mapping().unwrap();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                && s["spec"]["ports"][0]["targetPort"] == "metrics"
        });
        assert!(service_found, "no metrics Service for {service}");
    }
}

#[test]
fn the_dockerfile_builds_every_binary_into_one_slim_image() {
    let dockerfile = read(&deploy().join("Dockerfile"));
    assert!(dockerfile.contains("FROM rust:1.95-bookworm AS builder"));
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim"));
    assert!(dockerfile.contains("ca-certificates"));
    assert!(
        !dockerfile.contains("ENTRYPOINT ["),
        "the command picks the binary"
    );
    let binaries = image_binaries();
    assert_eq!(binaries.len(), 6, "{binaries:?}");
    for binary in &binaries {
        // Each is a workspace package's binary (`-p <name>` builds it).
        assert!(
            dockerfile.contains(&format!("-p {binary}")),
            "the build names {binary}"
        );
        let found = std::fs::read_dir(repo_root().join("services"))
            .unwrap()
            .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("Cargo.toml")).ok())
            .any(|manifest| manifest.contains(&format!("name = \"{binary}\"")));
        assert!(found, "no package {binary}");
    }
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|line| line.trim() == "target"));
}

#[test]
fn just_up_and_down_drive_the_compose_stack() {
    let justfile = read(&repo_root().join("justfile"));
    assert!(
        justfile.contains("up:\n    docker compose -f deploy/docker-compose.yml up -d --build")
    );
    assert!(justfile.contains("down:\n    docker compose -f deploy/docker-compose.yml down"));
}

#[test]
fn the_readme_explains_every_metric_to_sres() {
    let readme = read(&repo_root().join("README.md"));
    let section = readme
        .split("## For SREs")
        .nth(1)
        .expect("README has a \"For SREs\" section");
    for metric in METRICS {
        assert!(section.contains(metric), "README For SREs: {metric}");
    }
}
