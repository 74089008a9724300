//! Many clients writing at once: no acknowledged update is lost, every write gets its own
//! revision, a client reads its own writes, and all of it survives a restart.

use std::collections::BTreeSet;

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use tonic::transport::Channel;

use crate::harness::*;

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: usize = 50;
const SOURCES: usize = OPS_PER_CLIENT / 2;

fn source(k: usize) -> String {
    format!("src-{k:02}")
}

/// One write of a client, and the check that must reflect it once it is acknowledged.
enum Op {
    Grant(&'static str, usize),
    Revoke(&'static str, usize),
}

/// Client operations: grant `source_read` on every source, then revoke it from the even
/// ones and grant `source_admin` on the odd ones. Every op changes something.
fn ops() -> Vec<Op> {
    let grants = (0..SOURCES).map(|k| Op::Grant("source_read", k));
    let second = (0..SOURCES).map(|k| {
        if k % 2 == 0 {
            Op::Revoke("source_read", k)
        } else {
            Op::Grant("source_admin", k)
        }
    });
    grants.chain(second).collect()
}

/// The team table row each client's user ends with.
fn expected_row(user: &str) -> String {
    let mut grants: Vec<String> = (0..SOURCES)
        .filter(|k| k % 2 == 1)
        .flat_map(|k| {
            let id = source(k);
            [
                format!("source_admin@source/{id}"),
                format!("source_read@source/{id}"),
            ]
        })
        .collect();
    grants.sort();
    format!("{user} member [{}]", grants.join(", "))
}

/// Runs one client's ops on its own connection; returns the revision of every write.
async fn client(channel: Channel, user: String) -> Vec<u64> {
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut access = AccessServiceClient::new(channel);
    let mut revisions = Vec::new();
    for op in ops() {
        let (written, permission, id, expect_allowed) = match op {
            Op::Grant(role, k) => {
                let id = source(k);
                let written = admin
                    .grant(grant_req("acme", &user, role, one("source", &id)))
                    .await
                    .unwrap()
                    .into_inner();
                let permission = if role == "source_admin" {
                    "source.update"
                } else {
                    "source.read"
                };
                (written, permission, id, true)
            }
            Op::Revoke(role, k) => {
                let id = source(k);
                let written = admin
                    .revoke(revoke_req("acme", &user, role, one("source", &id)))
                    .await
                    .unwrap()
                    .into_inner();
                (written, "source.read", id, false)
            }
        };
        assert!(written.changed, "{user}: a distinct write changed nothing");
        // The write is visible to the very next read of the client that made it.
        let answer = access
            .check(check_req("acme", &user, permission, res("source", &id)))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.revision >= written.revision);
        assert_eq!(
            answer.decision.unwrap().allowed,
            expect_allowed,
            "{user} {permission} {id} right after its write"
        );
        revisions.push(written.revision);
    }
    revisions
}

#[tokio::test]
async fn concurrent_grants_and_revokes_from_many_clients_lose_no_update() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    let users: Vec<String> = (0..CLIENTS).map(|c| format!("user-{c}")).collect();
    for user in &users {
        add_member(&server, "acme", user).await;
    }
    for k in 0..SOURCES {
        register(&server, "acme", "source", &source(k), "").await;
    }
    let setup = server.revision().await;

    let mut clients = Vec::new();
    for user in &users {
        let channel = server.connect().await;
        clients.push(tokio::spawn(client(channel, user.clone())));
    }
    let mut all_revisions = Vec::new();
    for handle in clients {
        let revisions = handle.await.unwrap();
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "one client's revisions went backwards: {revisions:?}"
        );
        all_revisions.extend(revisions);
    }

    let unique: BTreeSet<u64> = all_revisions.iter().copied().collect();
    assert_eq!(all_revisions.len(), CLIENTS * OPS_PER_CLIENT);
    assert_eq!(
        unique.len(),
        all_revisions.len(),
        "two writes shared a revision"
    );
    assert!(unique.iter().all(|&r| r > setup));
    let last = *unique.last().unwrap();
    // Every write got the next revision: nothing else was written meanwhile.
    assert_eq!(last, setup + (CLIENTS * OPS_PER_CLIENT) as u64);

    let mut expected = vec!["olivia owner []".to_owned()];
    expected.extend(users.iter().map(|u| expected_row(u)));
    expected.sort();
    let (revision, rows) = team(&server, "acme").await;
    assert_eq!(revision, last);
    assert_eq!(rows, expected);

    let server = server.restart().await;
    assert_eq!(team(&server, "acme").await, (last, expected));
}

#[tokio::test]
async fn concurrent_identical_writes_change_the_state_exactly_once() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "sam").await;

    let mut channels = Vec::new();
    for _ in 0..CLIENTS {
        channels.push(server.connect().await);
    }
    let grants = channels.iter().cloned().map(|channel| {
        tokio::spawn(async move {
            AdminServiceClient::new(channel)
                .grant(grant_req("acme", "sam", "source_admin", all()))
                .await
                .unwrap()
                .into_inner()
        })
    });
    let granted = join(grants.collect()).await;
    let changed: Vec<&proto::WriteResponse> = granted.iter().filter(|w| w.changed).collect();
    assert_eq!(changed.len(), 1, "{granted:?}");
    let revision = changed[0].revision;
    assert!(
        granted.iter().all(|w| w.revision == revision),
        "{granted:?}"
    );

    let revokes = channels.iter().cloned().map(|channel| {
        tokio::spawn(async move {
            AdminServiceClient::new(channel)
                .revoke(revoke_req("acme", "sam", "source_admin", all()))
                .await
                .unwrap()
                .into_inner()
        })
    });
    let revoked = join(revokes.collect()).await;
    let changed: Vec<&proto::WriteResponse> = revoked.iter().filter(|w| w.changed).collect();
    assert_eq!(changed.len(), 1, "{revoked:?}");
    assert_eq!(changed[0].revision, revision + 1);
    assert_eq!(
        team(&server, "acme").await,
        (
            revision + 1,
            vec!["olivia owner []".to_owned(), "sam member []".to_owned()]
        )
    );
}

#[tokio::test]
async fn a_member_removed_while_others_grant_to_them_keeps_no_grant() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "sam").await;
    for k in 0..SOURCES {
        register(&server, "acme", "source", &source(k), "").await;
    }
    let mut writers = Vec::new();
    for k in 0..SOURCES {
        let channel = server.connect().await;
        writers.push(tokio::spawn(async move {
            let result = AdminServiceClient::new(channel)
                .grant(grant_req(
                    "acme",
                    "sam",
                    "source_read",
                    one("source", &source(k)),
                ))
                .await;
            match result {
                Ok(written) => assert!(written.into_inner().changed),
                Err(status) => assert_eq!(status.code(), tonic::Code::FailedPrecondition),
            }
        }));
    }
    let removed = remove_member(&server, "acme", "sam").await;
    join(writers).await;
    // Grants acknowledged before the removal went with it; later ones were refused.
    let (_, rows) = team(&server, "acme").await;
    assert_eq!(
        rows,
        ["olivia owner []"],
        "removed at revision {}",
        removed.revision
    );
    add_member(&server, "acme", "sam").await;
    assert_eq!(
        team(&server, "acme").await.1,
        ["olivia owner []", "sam member []"]
    );
}

async fn join<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}
