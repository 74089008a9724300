//! A follower's life around its leader's: started before it, following a leader whose
//! data was replaced, the leader stopping, and a follower's copy started as a leader.

use std::time::Duration;

use accessd::proto;

use super::process::{Node, check_at, create, free_address, team};

#[tokio::test]
async fn a_follower_started_before_its_leader_serves_only_once_it_has_bootstrapped() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let address = free_address();
    let follower = Node::follower_starting(&address, follower_dir.path(), &[]).await;
    // No leader: loaded, but not answering checks, and saying why.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!follower.serving("accessd.v1.AccessService").await);
    assert!(!follower.serving("").await);
    let status = follower.status().await;
    assert_eq!(status.state, "disconnected", "{status:?}");
    assert!(!status.serving);
    let refused = follower
        .admin()
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: "acme".into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.message().contains(&address),
        "{}",
        refused.message()
    );
    // The leader comes up with data: the follower bootstraps it and serves.
    let leader = Node::leader_at(leader_dir.path(), &address).await;
    let revision = create(&leader, "acme").await;
    follower
        .wait_health("accessd.v1.AccessService", true, Duration::from_secs(30))
        .await;
    let answer = follower
        .access()
        .check(check_at("acme", "olivia", "workspace.read", None, revision))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.decision.unwrap().allowed);
}

#[tokio::test]
async fn a_leader_whose_data_was_replaced_is_bootstrapped_from_again() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let address = free_address();
    let mut leader = Node::leader_at(dirs[0].path(), &address).await;
    create(&leader, "acme").await;
    create(&leader, "globex").await;
    let follower = Node::follower(&leader, dirs[2].path(), &[]).await;
    follower.wait_revision(2).await;
    let before = follower.status().await.history_id;
    // Another database at the same address, further along: a different history, which
    // the follower must not take for the continuation of its copy.
    leader.terminate().await;
    let leader = Node::leader_at(dirs[1].path(), &address).await;
    let mut last = 0;
    for ws in ["initech", "umbrella", "hooli"] {
        last = create(&leader, ws).await;
    }
    follower.wait_revision(last).await;
    let status = follower.status().await;
    assert_ne!(status.history_id, before);
    assert_eq!(status.history_id, leader.status().await.history_id);
    let refused = follower
        .access()
        .check(check_at("acme", "olivia", "workspace.read", None, last))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !refused.decision.unwrap().allowed,
        "acme is not in the new data"
    );
    assert_eq!(
        team(&follower, "hooli", last).await,
        team(&leader, "hooli", last).await
    );
}

#[tokio::test]
async fn a_leader_stops_promptly_with_followers_watching() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Node::leader(leader_dir.path(), &[]).await;
    create(&leader, "acme").await;
    let _follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    // The change streams end at SIGTERM, rather than holding the drain to its 15 s.
    let took = leader.terminate().await;
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn a_copy_of_some_workspaces_is_refused_as_a_leader_and_a_full_copy_may_lead() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let leader = Node::leader(dirs[0].path(), &[]).await;
    let revision = create(&leader, "acme").await;
    let mut partial = Node::follower(
        &leader,
        dirs[1].path(),
        &["--follow-selection", "workspaces:acme"],
    )
    .await;
    let mut full = Node::follower(&leader, dirs[2].path(), &[]).await;
    partial.wait_revision(revision).await;
    full.wait_revision(revision).await;
    partial.terminate().await;
    full.terminate().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_accessd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dirs[1].path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("follower's copy of workspaces:acme"),
        "{stderr}"
    );
    let promoted = Node::leader(dirs[2].path(), &[]).await;
    let status = promoted.status().await;
    assert_eq!(status.role, "leader");
    assert_eq!(status.revision, revision);
    assert_ne!(status.history_id, leader.status().await.history_id);
    assert!(create(&promoted, "globex").await > revision, "takes writes");
}

#[tokio::test]
async fn a_follower_follows_with_a_replicate_scoped_token_and_forwards_its_callers_tokens() {
    use accessd::api::callers::{digest_hex, token_digest};
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let file = dirs[0].path().join("callers.toml");
    let entry = |name: &str, scopes: &str| {
        format!(
            "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nscopes = [{scopes}]\n",
            digest_hex(&token_digest(&format!("token-of-{name}")))
        )
    };
    std::fs::write(
        &file,
        entry("sidecar", "\"replicate\"") + &entry("control", "\"admin\""),
    )
    .unwrap();
    let leader = Node::leader(
        &dirs[0].path().join("data"),
        &["--callers", file.to_str().unwrap()],
    )
    .await;
    let follower = Node::follower(
        &leader,
        dirs[1].path(),
        &["--leader-token", "token-of-sidecar"],
    )
    .await;
    let create = |token: Option<&str>| {
        let mut request = tonic::Request::new(proto::CreateWorkspaceRequest {
            workspace_id: "acme".into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let refused = follower
        .admin()
        .create_workspace(create(None))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unauthenticated,
        "the leader's answer"
    );
    let refused = follower
        .admin()
        .create_workspace(create(Some("token-of-sidecar")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let revision = follower
        .admin()
        .create_workspace(create(Some("token-of-control")))
        .await
        .unwrap()
        .into_inner()
        .revision;
    // The follower's own checks need no token: it listens on loopback only.
    let answer = follower
        .access()
        .check(check_at("acme", "olivia", "workspace.read", None, revision))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.decision.unwrap().allowed);
    // Having the revision, the follower's log says who made the change, as the leader's does.
    let log = std::fs::read_dir(dirs[1].path().join("change_log"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(log.contains(r#""caller":"control""#), "{log}");
}
