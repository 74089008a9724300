//! The Prometheus endpoint of the real binary (`--metrics-listen`), scraped over HTTP and
//! read with a Prometheus text-format parser: what checks, writes and errors do to the
//! metrics, on a leader and on its follower.

use std::{collections::HashMap, path::Path};

use accessd::proto;
use prometheus_parse::{Scrape, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    harness::check_req,
    replication::process::{Node, create},
};

/// The metrics address a server logged.
fn metrics_address(node: &Node) -> String {
    let logs = node.logs.lock().unwrap();
    logs.iter()
        .find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            event["fields"]["metrics_address"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("the server logs the metrics address")
}

/// Sends one HTTP/1.1 request; the status code and the body.
async fn http(address: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The metrics, parsed.
struct Metrics(Scrape);

impl Metrics {
    async fn scrape(node: &Node) -> Self {
        let (status, body) = http(&metrics_address(node), "GET", "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.ends_with("# EOF\n"),
            "an OpenMetrics exposition ends with # EOF"
        );
        Self(Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap())
    }

    /// The value of the sample named `name` whose labels include `labels`; panics if
    /// there is none or more than one.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets.last().unwrap().count,
                Value::Summary(_) => panic!("no summaries are served"),
            })
            .collect();
        assert_eq!(found.len(), 1, "`{name}` {labels:?}: {found:?}");
        found[0]
    }

    /// The value of `name`, or 0 if it is absent (a code a method never answered).
    fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let present =
            self.0.samples.iter().any(|s| {
                s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            });
        if present {
            self.value(name, labels)
        } else {
            0.0
        }
    }

    /// Every label set of `name`, by labels.
    fn labels_of(&self, name: &str) -> Vec<HashMap<String, String>> {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| {
                s.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect()
    }
}

const CHECK: [(&str, &str); 2] = [("service", "accessd.v1.AccessService"), ("method", "Check")];

fn with_code<'a>(labels: &[(&'a str, &'a str)], code: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut labels = labels.to_vec();
    labels.push(("code", code));
    labels
}

async fn leader_with_metrics(dir: &Path) -> Node {
    Node::leader(&dir.join("leader"), &["--metrics-listen", "127.0.0.1:0"]).await
}

#[tokio::test]
async fn checks_writes_and_errors_move_the_metrics_by_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_metrics(dir.path()).await;
    let before = Metrics::scrape(&leader).await;
    assert_eq!(before.value("accessd_store_revision", &[]), 0.0);
    assert_eq!(
        before.value_or_zero("accessd_rpc_calls_total", &with_code(&CHECK, "OK")),
        0.0
    );
    assert_eq!(before.value("accessd_writes_refusing", &[]), 0.0);
    let build = before.labels_of("accessd_build_info");
    assert_eq!(build.len(), 1);
    assert_eq!(build[0]["version"], env!("CARGO_PKG_VERSION"));

    let revision = create(&leader, "acme").await;
    let mut access = leader.access();
    let owner = access
        .check(check_req("acme", "olivia", "workspace.read", None))
        .await
        .unwrap()
        .into_inner();
    assert!(owner.decision.unwrap().allowed);
    let stranger = access
        .check(check_req("acme", "mallory", "workspace.read", None))
        .await
        .unwrap()
        .into_inner();
    assert!(!stranger.decision.unwrap().allowed);
    let malformed = access
        .check(check_req("acme", "", "workspace.read", None))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);
    access
        .batch_check(proto::BatchCheckRequest {
            checks: vec![
                check_req("acme", "olivia", "workspace.read", None),
                check_req("acme", "mallory", "workspace.read", None),
                check_req("globex", "olivia", "workspace.read", None),
            ],
            at_least_revision: 0,
        })
        .await
        .unwrap();

    let after = Metrics::scrape(&leader).await;
    assert_eq!(
        after.value("accessd_rpc_calls_total", &with_code(&CHECK, "OK")),
        2.0
    );
    assert_eq!(
        after.value(
            "accessd_rpc_calls_total",
            &with_code(&CHECK, "INVALID_ARGUMENT")
        ),
        1.0
    );
    assert_eq!(after.value("accessd_rpc_duration_seconds", &CHECK), 3.0);
    let create_workspace = [
        ("service", "accessd.v1.AdminService"),
        ("method", "CreateWorkspace"),
        ("code", "OK"),
    ];
    assert_eq!(
        after.value("accessd_rpc_calls_total", &create_workspace),
        1.0
    );
    let decided = |decision, basis| {
        after.value(
            "accessd_check_decisions_total",
            &[("decision", decision), ("basis", basis)],
        )
    };
    assert_eq!(decided("allowed", "owner"), 2.0);
    assert_eq!(decided("denied", "not_a_member"), 3.0);
    assert_eq!(decided("allowed", "grant"), 0.0);
    assert_eq!(after.value("accessd_store_revision", &[]), revision as f64);
    assert_eq!(after.value("accessd_store_workspaces", &[]), 1.0);
    assert_eq!(after.value("accessd_store_members", &[]), 1.0);
    assert_eq!(after.value("accessd_store_grants", &[]), 0.0);
    assert_eq!(after.value("accessd_write_group_size", &[]), 1.0);
    assert_eq!(after.value("accessd_write_durable_seconds", &[]), 1.0);
    assert_eq!(after.value("accessd_write_log_sync_seconds", &[]), 1.0);
    assert_eq!(after.value("accessd_write_flush_seconds", &[]), 1.0);
    for cause in ["no_space", "io", "restart"] {
        assert_eq!(
            after.value("accessd_writes_refused_total", &[("cause", cause)]),
            0.0
        );
    }
    assert_eq!(after.value("accessd_change_log_files", &[]), 1.0);
    assert!(after.value("accessd_change_log_bytes", &[]) > 0.0);
    assert!(
        after.value("accessd_data_directory_bytes", &[])
            > after.value("accessd_change_log_bytes", &[])
    );
    assert!(after.value("accessd_connections_open", &[]) >= 1.0);
    assert!(after.value("process_resident_memory_bytes", &[]) > 0.0);
    // No user or workspace id is ever a label.
    for sample in &after.0.samples {
        for (_, value) in sample.labels.iter() {
            assert!(
                !["acme", "olivia", "mallory", "globex"].contains(&value.as_str()),
                "{sample:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_metrics_port_answers_only_get_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_metrics(dir.path()).await;
    let address = metrics_address(&leader);
    assert_eq!(http(&address, "GET", "/").await.0, 404);
    assert_eq!(http(&address, "GET", "/metrics/more").await.0, 404);
    assert_eq!(http(&address, "POST", "/metrics").await.0, 404);
    assert_eq!(http(&address, "GET", "/metrics").await.0, 200);
}

#[tokio::test]
async fn a_follower_reports_the_leader_revision_it_has_reached() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Node::leader(&dir.path().join("leader"), &[]).await;
    create(&leader, "acme").await;
    let follower = Node::follower(
        &leader,
        &dir.path().join("follower"),
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    let revision = create(&leader, "globex").await;
    follower.wait_revision(revision).await;
    let scraped = Metrics::scrape(&follower).await;
    assert_eq!(
        scraped.value("accessd_store_revision", &[]),
        revision as f64
    );
    assert_eq!(scraped.value("accessd_store_workspaces", &[]), 2.0);
    assert_eq!(
        scraped.value("accessd_follower_leader_revision", &[]),
        revision as f64
    );
    assert_eq!(scraped.value("accessd_follower_lag_revisions", &[]), 0.0);
    assert_eq!(scraped.value("accessd_follower_lag_seconds", &[]), 0.0);
    assert_eq!(scraped.value("accessd_follower_reconnects_total", &[]), 0.0);
    assert!(scraped.value("accessd_follower_leader_silence_seconds", &[]) >= 0.0);
}
