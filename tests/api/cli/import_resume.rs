//! `accessd import` through a server killed with SIGKILL mid-import and started again on
//! the same data directory and address: the CLI reconnects, resumes from the last batch
//! the server acknowledged, and the database ends as the file says.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use super::{Run, accessd_with, quote};

/// Members in the file: six batches of the server's, so that a kill at the first
/// acknowledgement lands well before the end (the server reads at most three ahead).
const MEMBERS: usize = 120_000;

/// A free port on 127.0.0.1, released for the server to bind.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `accessd serve` on `port` with its data in `data_dir`, once it serves.
fn serve(data_dir: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_accessd"))
        .args(["serve", "--log-format", "json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (serving, served) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(r#""message":"serving""#) {
                let _ = serving.send(());
            }
        }
    });
    // The server logs `serving` once loaded; the bound is only a safety net.
    served.recv_timeout(Duration::from_secs(60)).unwrap();
    child
}

/// The records file: workspace acme, then its members, as an export writes them.
fn records_file() -> String {
    let mut text = String::from(
        r#"{"workspace":{"id":"acme","products":["connections"],"owners":["olivia"]}}"#,
    );
    text.push('\n');
    for i in 0..MEMBERS {
        text.push_str(&format!(
            r#"{{"member":{{"workspace":"acme","user":"user-{i:06}","membership":"member"}}}}"#
        ));
        text.push('\n');
    }
    text
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[tokio::test]
async fn import_resumes_through_a_server_killed_mid_import_and_restarted() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("records.jsonl");
    let records = records_file();
    std::fs::write(&path, &records).unwrap();
    let port = free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let mut server = serve(data.path(), port);

    let mut import = Command::new(env!("CARGO_BIN_EXE_accessd"))
        .args(["import", "--output", "json", "--retry-for", "60s"])
        .arg(&path)
        .env("ACCESSD_ADDR", &addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = import.stderr.take().unwrap();
    let (line_sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_sender.send(line);
        }
    });
    let mut said = Vec::new();
    let first_acknowledgement = loop {
        let line = lines.recv_timeout(Duration::from_secs(120)).unwrap();
        said.push(line.clone());
        if line.contains("durable or rejected") {
            break line;
        }
    };
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = serve(data.path(), port);

    let output = tokio::task::spawn_blocking(move || import.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    said.extend(lines.try_iter());
    let said = said.join("\n");
    assert!(output.status.success(), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let total = (MEMBERS + 1) as u64;
    assert_eq!(report["records"], total, "{report}\n{said}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert!(report["resumed"].as_u64().unwrap() >= 1, "{report}\n{said}");
    assert_eq!(
        report["applied"].as_u64().unwrap() + report["unchanged"].as_u64().unwrap(),
        total,
        "each record counted once: {report}"
    );
    assert!(
        said.contains("resuming after record"),
        "after `{first_acknowledgement}`:\n{said}"
    );

    let exported: Run = accessd_with(
        &[("ACCESSD_ADDR", &addr)],
        format!(
            "export --format records --out {}",
            quote(files.path().join("out.jsonl").display())
        ),
    )
    .await;
    exported.ok();
    let out = std::fs::read_to_string(files.path().join("out.jsonl")).unwrap();
    assert_eq!(sorted_lines(&out), sorted_lines(&records));
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn import_gives_up_once_the_server_has_been_unreachable_for_retry_for() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("records.jsonl");
    let line = r#"{"workspace":{"id":"acme","products":[],"owners":["olivia"]}}"#;
    std::fs::write(&path, line).unwrap();
    let addr = format!("http://127.0.0.1:{}", free_port());
    let run = accessd_with(
        &[("ACCESSD_ADDR", &addr)],
        format!("import {} --retry-for 300ms", quote(path.display())),
    )
    .await;
    let stderr = run.failed(1);
    assert!(
        stderr.contains("resuming after record 0 in 0.1 s"),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("accessd: cannot connect to `{addr}`")),
        "{stderr}"
    );
}
