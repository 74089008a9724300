//! `accessd backup`, `restore` and `verify` as an operator runs them: a backup taken
//! while writes go on, restored into a new data directory, checked, and served again at
//! the backup's revision with every check answered as before; and what each refuses.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use accessd::{model::Catalog, proto, server::ServeOptions};
use serde_json::Value;

use crate::harness::*;

use super::{accessd, accessd_with, quote};

/// Two workspaces: acme with two owners, members, sources, a destination under its
/// source, a warehouse and a tracking plan, grants on one instance and on all, and the
/// protocols product disabled while sam still holds `protocols_read`; globex with
/// personas.
async fn populated(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &["protocols", "personas"]).await;
    set_membership(server, "acme", "zoe", proto::Membership::Owner).await;
    for user in ["sam", "ria", "max"] {
        add_member(server, "acme", user).await;
    }
    register(server, "acme", "source", "ios", "").await;
    register(server, "acme", "source", "android", "").await;
    register(server, "acme", "destination", "amp", "ios").await;
    register(server, "acme", "destination", "mix", "android").await;
    register(server, "acme", "warehouse", "bq", "").await;
    register(server, "acme", "tracking_plan", "checkout", "").await;
    grant(server, "acme", "sam", "source_admin", one("source", "ios")).await;
    grant(server, "acme", "sam", "protocols_read", all()).await;
    grant(server, "acme", "ria", "source_read", all()).await;
    grant(server, "acme", "ria", "warehouse_read", all()).await;
    grant(
        server,
        "acme",
        "max",
        "source_read",
        one("source", "android"),
    )
    .await;
    grant(server, "acme", "max", "personas_user", all()).await;
    set_products(server, "acme", &["personas"]).await;
    create_workspace(server, "globex", "gina", &["personas"]).await;
    add_member(server, "globex", "sam").await;
    grant(server, "globex", "sam", "personas_read", all()).await;
    register(server, "globex", "source", "web", "").await;
}

/// Every check of users × permissions × resources in acme and globex, each permission
/// with the instances of the type it names.
fn grid() -> Vec<proto::CheckRequest> {
    let resources: &[(&str, &[&str])] = &[
        ("source", &["ios", "android", "web", "gone"]),
        ("destination", &["amp", "mix"]),
        ("warehouse", &["bq"]),
        ("tracking_plan", &["checkout"]),
    ];
    let permissions = [
        "workspace.read",
        "workspace.update",
        "workspace.manage_access",
        "source.create",
        "source.read",
        "source.update",
        "source.delete",
        "destination.create",
        "destination.read",
        "destination.update",
        "warehouse.read",
        "warehouse.update",
        "tracking_plan.read",
        "tracking_plan.update",
    ];
    let mut checks = Vec::new();
    for ws in ["acme", "globex", "nowhere"] {
        for user in ["olivia", "zoe", "sam", "ria", "max", "gina", "stranger"] {
            for permission in permissions {
                let (ty, _) = permission.split_once('.').unwrap();
                let ty = match permission {
                    "destination.create" => "source",
                    "source.create" => "workspace",
                    _ => ty,
                };
                match resources.iter().find(|(t, _)| *t == ty) {
                    None => checks.push(check_req(ws, user, permission, None)),
                    Some((_, ids)) => {
                        for id in *ids {
                            checks.push(check_req(ws, user, permission, res(ty, id)));
                        }
                    }
                }
            }
        }
    }
    checks
}

/// The answers to `checks`: allowed or not, and why.
async fn answers(server: &TestServer, checks: &[proto::CheckRequest]) -> Vec<String> {
    let response = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks: checks.to_vec(),
            at_least_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    response
        .decisions
        .iter()
        .map(|d| format!("{} {:?}", d.allowed, d.basis))
        .collect()
}

/// The server's export as records.
async fn exported(server: &TestServer) -> (u64, Vec<proto::Record>) {
    let mut stream = server
        .admin()
        .export(proto::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (mut revision, mut records) = (0, Vec::new());
    while let Some(chunk) = stream.message().await.unwrap() {
        revision = chunk.revision;
        records.extend(chunk.records);
    }
    (revision, records)
}

/// The header line of a backup file.
fn header(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// Runs an offline subcommand (no server address).
async fn offline(line: impl AsRef<str>) -> super::Run {
    accessd_with(&[], line).await
}

#[tokio::test]
async fn a_backup_taken_during_writes_restores_the_revision_and_every_answer() {
    let server = TestServer::start().await;
    populated(&server).await;
    create_workspace(&server, "busy", "bob", &[]).await;

    // Members join `busy` all through the backup, each write's revision noted.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (admin, stop) = (server.admin(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut admin = admin;
            let mut written = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) || written.len() < 20 {
                let user = format!("user-{n:05}");
                let response = admin
                    .set_membership(proto::SetMembershipRequest {
                        workspace_id: "busy".into(),
                        user_id: user.clone(),
                        membership: proto::Membership::Member.into(),
                        actor_user_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                written.push((response.revision, user));
                n += 1;
            }
            written
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accessd.backup");
    // Let some writes land first, so the backup falls among them.
    while server.revision().await < 40 {
        tokio::task::yield_now().await;
    }
    let backup = accessd(&server, format!("backup --out {}", quote(file.display()))).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    let summary = backup.ok();
    let revision = header(&file)["revision"].as_u64().unwrap();
    assert!(
        summary.starts_with(&format!("backed up revision {revision} of history ")),
        "{summary}"
    );
    let expected_busy: Vec<&str> = written
        .iter()
        .filter(|(r, _)| *r <= revision)
        .map(|(_, user)| user.as_str())
        .collect();
    assert!(
        written.iter().any(|(r, _)| *r > revision),
        "writes went on after the backup's revision"
    );
    let original_answers = answers(&server, &grid()).await;
    assert!(
        original_answers.iter().any(|a| a.starts_with("true"))
            && original_answers.iter().any(|a| a.starts_with("false")),
        "the grid holds both answers"
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("\"protocols_read\""),
        "a grant of a disabled product is backed up"
    );
    let (original_history, _) = {
        let status = accessd(&server, "status --output json").await.json();
        (status["history_id"].as_str().unwrap().to_owned(), ())
    };

    let restored_dir = Arc::new(tempfile::tempdir().unwrap());
    let data_dir = restored_dir.path();
    let restore = offline(format!(
        "restore --data-dir {} {}",
        quote(data_dir.display()),
        quote(file.display())
    ))
    .await;
    let text = restore.ok();
    assert!(
        text.starts_with(&format!("restored revision {revision} into ")),
        "{text}"
    );
    assert!(text.contains("verify: 0 violations"), "{text}");

    let verify = offline(format!(
        "verify --data-dir {} --output json",
        quote(data_dir.display())
    ))
    .await
    .json();
    assert_eq!(verify["violations"], 0, "{verify:#}");
    assert_eq!(verify["revision"], revision);
    assert_ne!(verify["history_id"].as_str().unwrap(), original_history);

    // Served again: the same revision, the same records, the same answers.
    let restored = TestServer::start_with(
        Arc::clone(&restored_dir),
        Catalog::built_in(),
        ServeOptions::default(),
    )
    .await;
    assert_eq!(restored.revision().await, revision);
    let export = accessd(&restored, "export --format records").await;
    let backup_text = std::fs::read_to_string(&file).unwrap();
    let backup_lines: Vec<&str> = backup_text.lines().collect();
    let records = &backup_lines[1..backup_lines.len() - 1];
    assert_eq!(export.ok().lines().collect::<Vec<_>>(), records);
    let busy: Vec<String> = records
        .iter()
        .filter_map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            let member = &value["member"];
            (member["workspace"] == "busy").then(|| member["user"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        busy, expected_busy,
        "busy's members as of the backup's revision"
    );
    assert_eq!(answers(&restored, &grid()).await, original_answers);
    let (_, records) = exported(&restored).await;
    assert!(records.len() > 20);

    // A restored leader takes writes after the backup's revision.
    let written = create_workspace(&restored, "after", "amy", &[]).await;
    assert_eq!(written, revision + 1);
    restored.stop().await;
    let verify = offline(format!("verify --data-dir {}", quote(data_dir.display()))).await;
    assert!(
        verify.ok().contains("violations      0"),
        "{}",
        verify.stdout
    );
}

#[tokio::test]
async fn restore_refuses_a_data_directory_that_holds_anything() {
    let server = TestServer::start().await;
    populated(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    accessd(&server, format!("backup --out {}", quote(file.display())))
        .await
        .ok();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("notes.txt"), "mine").unwrap();
    let refused = offline(format!(
        "restore --data-dir {} {}",
        quote(target.path().display()),
        quote(file.display())
    ))
    .await;
    let message = refused.failed(1);
    assert!(
        message.contains("not empty (it holds `notes.txt`)")
            && message.contains("restore writes only into an empty data directory"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        1,
        "left as it was"
    );
}

#[tokio::test]
async fn a_truncated_or_edited_backup_restores_nothing() {
    let server = TestServer::start().await;
    populated(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    accessd(&server, format!("backup --out {}", quote(file.display())))
        .await
        .ok();
    let whole = std::fs::read_to_string(&file).unwrap();
    let cases = [
        (whole[..whole.len() / 2].to_owned(), "without its end line"),
        (whole.replace("\"ria\"", "\"eve\""), "altered or damaged"),
        (
            whole.replace("source_admin", "no_such_role"),
            "altered or damaged",
        ),
    ];
    for (text, says) in cases {
        std::fs::write(&file, text).unwrap();
        let target = tempfile::tempdir().unwrap();
        let data_dir = target.path().join("data");
        let refused = offline(format!(
            "restore --data-dir {} {}",
            quote(data_dir.display()),
            quote(file.display())
        ))
        .await;
        let message = refused.failed(1);
        assert!(message.contains(says), "{says}: {message}");
        assert!(!data_dir.exists(), "{says}: nothing written");
    }
}

#[tokio::test]
async fn restore_refuses_a_record_the_catalog_cannot_represent_with_its_line() {
    let server = TestServer::start().await;
    populated(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    accessd(&server, format!("backup --out {}", quote(file.display())))
        .await
        .ok();
    // The built-in catalog without `personas_read`, as an operator's edited one.
    let roles = dir.path().join("roles.toml");
    let edited = accessd::model::catalog::BUILT_IN.replace("personas_read", "personas_viewer");
    std::fs::write(&roles, edited).unwrap();
    let target = tempfile::tempdir().unwrap();
    let refused = offline(format!(
        "restore --data-dir {} --roles {} {}",
        quote(target.path().display()),
        quote(roles.display()),
        quote(file.display())
    ))
    .await;
    let message = refused.failed(1);
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.contains("personas_read"))
        .unwrap()
        + 1;
    assert!(
        message.contains(&format!("line {line}:")) && message.contains("personas_read"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn verify_refuses_the_data_directory_of_a_running_server() {
    let server = TestServer::start().await;
    populated(&server).await;
    let refused = offline(format!(
        "verify --data-dir {}",
        quote(server.data_dir.path().display())
    ))
    .await;
    let message = refused.failed(1);
    assert!(message.contains("is a server running on it?"), "{message}");
    let dir = server.stop().await;
    let clean = offline(format!("verify --data-dir {}", quote(dir.path().display()))).await;
    assert!(clean.ok().contains("violations      0"), "{}", clean.stdout);
}
