//! `accessd audit` saying where the audit trail starts, and the `serve` flags that set
//! how long it is kept.

use accessd::store::StoreConfig;

use super::{accessd, accessd_with, quote};
use crate::harness::*;

#[tokio::test]
async fn audit_says_where_the_trail_starts_when_the_query_reaches_before_it() {
    // A change log budget of a few dozen writes, and three times as many.
    let server = TestServer::start_with_store(&StoreConfig {
        change_log_bytes: 4 << 10,
        ..StoreConfig::default()
    })
    .await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    for i in 0..60 {
        add_member(&server, "acme", &format!("user-{i:02}")).await;
    }

    let run = accessd(&server, "audit --output json").await;
    let entries = run.json();
    let oldest = &entries[0];
    let note = format!(
        "note: the audit trail starts at revision {}, made at ",
        oldest["revision"]
    );
    assert!(run.stderr.starts_with(&note), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("({})", oldest["unix_millis"])));

    // A query from the trail's start on lacks nothing.
    let since = oldest["unix_millis"].as_u64().unwrap();
    let run = accessd(&server, format!("audit --since-unix-ms {since}")).await;
    assert!(run.ok().contains("acme: user-59 is member"));
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn serve_refuses_an_audit_retention_it_cannot_keep() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |flags: &str| {
        format!(
            "serve --listen 127.0.0.1:0 --data-dir {} {flags}",
            quote(dir.path().display())
        )
    };
    let run = accessd_with(&[], serve("--audit-retention 90d --change-log-mb 0")).await;
    assert!(
        run.failed(1).contains(
            "`--audit-retention` keeps the change log's entries, but `--change-log-mb 0`"
        ),
        "{}",
        run.stderr
    );
    let run = accessd_with(
        &[("ACCESSD_AUDIT_RETENTION", "12h")],
        serve("--change-log-mb 512 --audit-max-mb 256"),
    )
    .await;
    assert!(
        run.failed(1)
            .contains("`--audit-max-mb` (256) is less than `--change-log-mb` (512)"),
        "{}",
        run.stderr
    );
    let run = accessd_with(&[], serve("--audit-retention 'a while'")).await;
    assert!(
        run.failed(2).contains("--audit-retention"),
        "{}",
        run.stderr
    );
}
