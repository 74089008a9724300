//! The callers file as an operator uses it: read at start, read again when it changes,
//! and the refusal to listen beyond loopback with no credentials at all.

use std::time::{Duration, Instant};

use accessd::{
    api::callers::{digest_hex, token_digest},
    proto,
};
use tonic::{Code, Request};

use crate::replication::process::Node;

fn entry(name: &str, token: &str, scopes: &str) -> String {
    format!(
        "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nscopes = [{scopes}]\n",
        digest_hex(&token_digest(token))
    )
}

fn check(token: &str) -> Request<proto::CheckRequest> {
    let mut request = Request::new(crate::harness::check_req(
        "acme",
        "olivia",
        "workspace.read",
        None,
    ));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn a_changed_callers_file_is_read_again_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("callers.toml");
    std::fs::write(&file, entry("first", "token-one", "\"check\"")).unwrap();
    let data = dir.path().join("data");
    let node = Node::leader(&data, &["--callers", file.to_str().unwrap()]).await;
    let code = |token: &'static str| {
        let mut access = node.access();
        async move {
            match access.check(check(token)).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
    };
    assert_eq!(code("token-one").await, Code::Ok);
    assert_eq!(code("token-two").await, Code::Unauthenticated);
    // Replaced as a Secret's file is: a new file renamed over the old one.
    let next = dir.path().join("callers.next");
    std::fs::write(&next, entry("second", "token-two", "\"check\"")).unwrap();
    std::fs::rename(&next, &file).unwrap();
    let started = Instant::now();
    while code("token-two").await != Code::Ok {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not read again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code("token-one").await, Code::Unauthenticated);
    // A file that no longer reads keeps the callers read before.
    std::fs::write(&file, "[[caller]]\nname = ").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(code("token-two").await, Code::Ok);
}

#[tokio::test]
async fn no_credentials_beyond_loopback_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_accessd"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("ACCESSD_INSECURE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 with no credentials"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure"), "{stderr}");
    let insecure = Node::leader_at_args(dir.path(), "0.0.0.0:0", &["--insecure"]).await;
    assert!(insecure.serving("").await);
}
