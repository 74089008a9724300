//! Partial followers hold only their workspaces, and refuse the others by name.

use super::process::{Node, check_at, create};

#[tokio::test]
async fn a_follower_of_listed_workspaces_holds_only_those() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(leader_dir.path(), &[]).await;
    create(&leader, "acme").await;
    create(&leader, "globex").await;
    let follower = Node::follower(
        &leader,
        follower_dir.path(),
        &["--follow-selection", "workspaces:acme,initech"],
    )
    .await;
    // A workspace it holds that is created later arrives too.
    let last = create(&leader, "initech").await;
    create(&leader, "umbrella").await;
    for ws in ["acme", "initech"] {
        let answer = follower
            .access()
            .check(check_at(ws, "olivia", "workspace.read", None, last))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.decision.unwrap().allowed, "{ws}");
    }
    for ws in ["globex", "umbrella"] {
        let refused = follower
            .access()
            .check(check_at(ws, "olivia", "workspace.read", None, last))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{ws}");
        assert!(
            refused.message().contains(&format!("`{ws}`"))
                && refused.message().contains("workspaces:acme,initech"),
            "{}",
            refused.message()
        );
    }
    let status = follower.status().await;
    assert_eq!(status.selection, "workspaces:acme,initech");
    assert!(status.revision >= last);
}

#[tokio::test]
async fn two_shards_hold_every_workspace_between_them_and_none_twice() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let leader = Node::leader(dirs[0].path(), &[]).await;
    let mut last = 0;
    let workspaces: Vec<String> = (0..20).map(|i| format!("tenant-{i}")).collect();
    for ws in &workspaces {
        last = create(&leader, ws).await;
    }
    let shards = [
        Node::follower(
            &leader,
            dirs[1].path(),
            &["--follow-selection", "shard:0/2"],
        )
        .await,
        Node::follower(
            &leader,
            dirs[2].path(),
            &["--follow-selection", "shard:1/2"],
        )
        .await,
    ];
    for ws in &workspaces {
        let mut held = 0;
        for shard in &shards {
            match shard
                .access()
                .check(check_at(ws, "olivia", "workspace.read", None, last))
                .await
            {
                Ok(answer) => {
                    assert!(answer.into_inner().decision.unwrap().allowed);
                    held += 1;
                }
                Err(refused) => assert_eq!(refused.code(), tonic::Code::FailedPrecondition),
            }
        }
        assert_eq!(held, 1, "{ws} is held by exactly one shard");
    }
}
