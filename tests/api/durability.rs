//! Acknowledged writes survive `kill -9`: the real binary is killed while writes are in
//! flight, restarted on the same data directory, and every acknowledged write is there,
//! with its change log entry (read from the change log's files alone, as an auditor would).

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use tonic::transport::Channel;

use crate::harness::{check_req, import_chunks, import_to_end, one, res};

#[path = "../process/mod.rs"]
pub(crate) mod process;

use process::Server;

/// A server on `data_dir` with workspace acme, owned by olivia.
async fn spawn_with_acme(data_dir: &std::path::Path) -> Server {
    let server = Server::start(data_dir, &[]).await;
    AdminServiceClient::new(server.channel.clone())
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: "acme".into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        })
        .await
        .unwrap();
    server
}

/// Runs `write` for every user concurrently and kills the server with SIGKILL (no
/// drain, no final flush) once half of them are acknowledged; returns each
/// acknowledged user with the revision its write reported, at least half of them.
async fn write_then_kill<F, Fut>(
    server: &mut Server,
    users: &[String],
    write: F,
) -> Vec<(String, u64)>
where
    F: Fn(AdminServiceClient<Channel>, String) -> Fut,
    Fut: Future<Output = Result<tonic::Response<proto::WriteResponse>, tonic::Status>>
        + Send
        + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        let call = write(
            AdminServiceClient::new(server.channel.clone()),
            user.clone(),
        );
        let user = user.clone();
        tasks.spawn(async move { (user, call.await.map(|r| r.into_inner().revision)) });
    }
    let mut acknowledged = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let (user, Ok(revision)) = joined.unwrap() {
            acknowledged.push((user, revision));
        }
        if acknowledged.len() == users.len() / 2 {
            server.kill();
        }
    }
    assert!(acknowledged.len() >= users.len() / 2);
    acknowledged
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_with_acme(dir.path()).await;
    let mut admin = AdminServiceClient::new(server.channel.clone());
    let users: Vec<String> = (0..40).map(|i| format!("user-{i:02}")).collect();
    for user in &users {
        admin
            .set_membership(proto::SetMembershipRequest {
                workspace_id: "acme".into(),
                user_id: user.clone(),
                membership: proto::Membership::Member.into(),
                actor_user_id: String::new(),
            })
            .await
            .unwrap();
        admin
            .register_resource(proto::RegisterResourceRequest {
                workspace_id: "acme".into(),
                resource: res("source", user),
                parent_id: String::new(),
            })
            .await
            .unwrap();
    }

    // Concurrent grants; the process is killed while some are still in flight.
    let acknowledged = write_then_kill(&mut server, &users, |mut admin, user| async move {
        admin
            .grant(proto::GrantRequest {
                workspace_id: "acme".into(),
                user_id: user.clone(),
                role: "source_admin".into(),
                scope: one("source", &user),
                actor_user_id: String::new(),
            })
            .await
    })
    .await;

    let server = Server::start(dir.path(), &[]).await;
    let mut access = AccessServiceClient::new(server.channel.clone());
    let max_acknowledged = acknowledged.iter().map(|(_, r)| *r).max().unwrap();
    for (user, _) in &acknowledged {
        let answer = access
            .check(check_req(
                "acme",
                user,
                "source.update",
                res("source", user),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            answer.decision.unwrap().allowed,
            "{user}'s acknowledged grant was lost"
        );
        assert!(answer.revision >= max_acknowledged);
    }
}

/// Every change of the change log in `data_dir`, as (revision, user) of each change
/// naming a user, read from its files alone: JSON lines in `change_log/*.jsonl`, whose
/// names sort as the revisions they start with.
fn logged_users(data_dir: &std::path::Path) -> Vec<(u64, String)> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("change_log"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut logged = Vec::new();
    for file in files {
        let contents = std::fs::read(file).unwrap();
        // A line the kill cut short (the last, without its newline) was never acknowledged.
        for line in contents
            .split_inclusive(|b| *b == b'\n')
            .filter(|l| l.ends_with(b"\n"))
        {
            let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
            let revision = entry["revision"].as_u64().unwrap();
            for change in entry["changes"].as_array().unwrap() {
                if let Some(user) = change["user"].as_str() {
                    logged.push((revision, user.to_owned()));
                }
            }
        }
    }
    logged
}

#[tokio::test]
async fn acknowledged_writes_keep_their_change_log_entries_through_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_with_acme(dir.path()).await;

    // Concurrent writes; the process is killed while some are still in flight.
    let users: Vec<String> = (0..60).map(|i| format!("user-{i:02}")).collect();
    let acknowledged = write_then_kill(&mut server, &users, |mut admin, user| async move {
        admin
            .set_membership(proto::SetMembershipRequest {
                workspace_id: "acme".into(),
                user_id: user,
                membership: proto::Membership::Member.into(),
                actor_user_id: String::new(),
            })
            .await
    })
    .await;

    let logged = logged_users(dir.path());
    for (user, revision) in &acknowledged {
        let write = (*revision, user.clone());
        assert!(
            logged.contains(&write),
            "{write:?} was acknowledged but is not in the change log"
        );
    }

    // Restarted, the state is at some revision: the log holds every revision up to it
    // (never state without its log) and, once the open has redone the complete entries
    // the killed process logged past it and cut off a torn one, none beyond.
    let server = Server::start(dir.path(), &[]).await;
    let revision = AccessServiceClient::new(server.channel.clone())
        .check(check_req("acme", "olivia", "workspace.read", None))
        .await
        .unwrap()
        .into_inner()
        .revision;
    drop(server);
    let mut revisions: Vec<u64> = logged_users(dir.path()).iter().map(|(r, _)| *r).collect();
    revisions.dedup();
    // Every revision names a user: revision 1, creating the workspace, names its owner.
    assert_eq!(revisions, (1..=revision).collect::<Vec<_>>());
}

/// A member with thousands of grants has a record larger than the 128 KiB past which
/// sled keeps a message in a file of its own (`store::blobs`). Acknowledged by Import,
/// it survives `kill -9`: the restarted server reads every grant back.
#[tokio::test]
async fn a_member_with_thousands_of_grants_survives_kill_9() {
    use accessd::proto::record::Kind;

    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_with_acme(dir.path()).await;
    let sources: Vec<String> = (0..3000).map(|i| format!("src_{i:022}")).collect();
    let mut records = vec![proto::Record {
        kind: Some(Kind::Member(proto::MemberRecord {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            membership: proto::Membership::Member.into(),
        })),
    }];
    for source in &sources {
        records.push(proto::Record {
            kind: Some(Kind::Resource(proto::ResourceRecord {
                workspace_id: "acme".into(),
                resource: res("source", source),
                parent_id: String::new(),
            })),
        });
    }
    for source in &sources {
        records.push(proto::Record {
            kind: Some(Kind::Grant(proto::GrantRecord {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                role: "source_admin".into(),
                scope: one("source", source),
            })),
        });
    }
    let requests = import_chunks(&records, 2000);
    let imported = import_to_end(
        AdminServiceClient::new(server.channel.clone())
            .import(tokio_stream::iter(requests))
            .await,
    )
    .await
    .unwrap();
    assert_eq!(imported.rejected_count, 0);
    assert!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count() > 0,
        "the member's record went to a blob file"
    );
    server.kill();

    let server = Server::start(dir.path(), &[]).await;
    let mut access = AccessServiceClient::new(server.channel.clone());
    for source in sources.iter().step_by(97).chain(sources.last()) {
        let answer = access
            .check(check_req(
                "acme",
                "sam",
                "source.update",
                res("source", source),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            answer.decision.unwrap().allowed,
            "sam's grant on {source} was lost"
        );
    }
    let team = AccessServiceClient::new(server.channel.clone())
        .list_access(proto::ListAccessRequest {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let grants: usize = team.entries.iter().map(|e| e.grants.len()).sum();
    assert_eq!(grants, sources.len());
}
