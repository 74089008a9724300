//! The ReplicationService as any consumer of changes sees it: Snapshot at one revision,
//! Watch in order and in whole groups, and the refusals that say to bootstrap again.

use std::time::Duration;

use accessd::proto::{self, watch_response::Event};
use tonic::{Code, Streaming};

use super::process::{Node, create};
use crate::harness::{import_chunks, import_to_end};

async fn watch(node: &Node, request: proto::WatchRequest) -> Streaming<proto::WatchResponse> {
    node.replication()
        .watch(request)
        .await
        .unwrap()
        .into_inner()
}

async fn next(stream: &mut Streaming<proto::WatchResponse>) -> Event {
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message within 10 s")
        .unwrap()
        .expect("the stream goes on");
    message.event.unwrap()
}

/// The messages up to the end of the next group: its entries, and where it ends.
async fn group(
    stream: &mut Streaming<proto::WatchResponse>,
) -> (Vec<proto::ChangeEntry>, u64, usize) {
    let mut entries = Vec::new();
    let mut messages = 0;
    loop {
        match next(stream).await {
            Event::Changes(part) => {
                messages += 1;
                entries.extend(part.entries);
                if part.end_revision > 0 {
                    return (entries, part.end_revision, messages);
                }
            }
            Event::Heartbeat(_) => panic!("a heartbeat inside a group"),
        }
    }
}

#[tokio::test]
async fn a_watch_starts_with_a_heartbeat_then_sends_every_revision_after_the_one_asked() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Node::leader(dir.path(), &[]).await;
    for ws in ["a", "b", "c"] {
        create(&leader, ws).await;
    }
    let history = leader.status().await.history_id;
    let mut stream = watch(
        &leader,
        proto::WatchRequest {
            after_revision: 1,
            history_id: history.clone(),
            selection: None,
        },
    )
    .await;
    match next(&mut stream).await {
        Event::Heartbeat(beat) => {
            assert_eq!(beat.revision, 3);
            assert_eq!(beat.history_id, history);
        }
        other => panic!("{other:?}"),
    }
    let mut revisions = Vec::new();
    while revisions.last() != Some(&3) {
        let (entries, end, _) = group(&mut stream).await;
        assert_eq!(entries.last().map(|e| e.revision), Some(end));
        for entry in entries {
            assert_eq!(entry.command, "create_workspace");
            assert_eq!(entry.changes.len(), 2, "the workspace and its owner");
            revisions.push(entry.revision);
        }
    }
    assert_eq!(revisions, [2, 3]);
    // Then, while nothing changes, heartbeats; and a new write arrives as a group.
    assert!(matches!(next(&mut stream).await, Event::Heartbeat(b) if b.revision == 3));
    create(&leader, "d").await;
    let (entries, end, _) = group(&mut stream).await;
    assert_eq!((entries.len(), end), (1, 4));
}

#[tokio::test]
async fn a_large_group_arrives_in_several_messages_and_only_the_last_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Node::leader(dir.path(), &[]).await;
    let created = create(&leader, "acme").await;
    // One import batch of 10,000 members: one revision, 10,000 changes.
    let records: Vec<proto::Record> = (0..10_000)
        .map(|i| proto::Record {
            kind: Some(proto::record::Kind::Member(proto::MemberRecord {
                workspace_id: "acme".into(),
                user_id: format!("user-{i:05}"),
                membership: proto::Membership::Member.into(),
            })),
        })
        .collect();
    let imported = import_to_end(
        leader
            .admin()
            .import(tokio_stream::iter(import_chunks(&records, records.len())))
            .await,
    )
    .await
    .unwrap();
    assert_eq!(imported.batches, 1);
    let mut stream = watch(
        &leader,
        proto::WatchRequest {
            after_revision: created,
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(next(&mut stream).await, Event::Heartbeat(_)));
    let (entries, end, messages) = group(&mut stream).await;
    assert_eq!(end, imported.revision);
    assert!(messages >= 3, "{messages} messages");
    assert!(
        entries
            .iter()
            .all(|e| e.revision == end && e.command == "batch")
    );
    let changes: usize = entries.iter().map(|e| e.changes.len()).sum();
    assert_eq!(changes, 10_000);
}

#[tokio::test]
async fn a_selection_gets_only_its_workspaces_changes_and_every_group_end() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Node::leader(dir.path(), &[]).await;
    for ws in ["acme", "globex", "acme2"] {
        create(&leader, ws).await;
    }
    let mut stream = watch(
        &leader,
        proto::WatchRequest {
            after_revision: 0,
            selection: Some(proto::Selection {
                workspace_ids: vec!["globex".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(next(&mut stream).await, Event::Heartbeat(_)));
    let mut ends = Vec::new();
    let mut seen = Vec::new();
    while ends.last() != Some(&3) {
        let (entries, end, _) = group(&mut stream).await;
        ends.push(end);
        for entry in entries {
            for change in entry.changes {
                seen.push((entry.revision, change.workspace_id));
            }
        }
    }
    assert_eq!(seen, [(2, "globex".to_owned()), (2, "globex".to_owned())]);
}

#[tokio::test]
async fn a_watch_that_cannot_resume_is_refused_with_what_to_do() {
    let (dir, unlogged_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(dir.path(), &[]).await;
    let revision = create(&leader, "acme").await;
    let refusal = |request| {
        let mut client = leader.replication();
        async move { client.watch(request).await.unwrap_err() }
    };
    let ahead = refusal(proto::WatchRequest {
        after_revision: revision + 1,
        ..Default::default()
    })
    .await;
    assert_eq!(ahead.code(), Code::OutOfRange);
    assert!(
        ahead.message().contains("bootstrap again"),
        "{}",
        ahead.message()
    );
    let other = refusal(proto::WatchRequest {
        after_revision: revision,
        history_id: "0123".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(other.code(), Code::OutOfRange);
    assert!(other.message().contains("`0123`"), "{}", other.message());
    let both = refusal(proto::WatchRequest {
        selection: Some(proto::Selection {
            workspace_ids: vec!["acme".into()],
            shard_index: 0,
            shard_count: 2,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(both.code(), Code::InvalidArgument);
    assert!(both.message().contains("`selection`"), "{}", both.message());
    let unlogged = Node::leader(unlogged_dir.path(), &["--change-log-mb", "0"]).await;
    let refused = unlogged
        .replication()
        .watch(proto::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("--change-log-mb 0"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_snapshot_is_read_at_one_revision_of_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Node::leader(dir.path(), &[]).await;
    let mut revision = 0;
    for i in 0..30 {
        revision = create(&leader, &format!("ws{i:02}")).await;
    }
    let history = leader.status().await.history_id;
    let mut stream = leader
        .replication()
        .snapshot(proto::SnapshotRequest {
            selection: Some(proto::Selection {
                shard_index: 1,
                shard_count: 3,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut workspaces = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        assert_eq!(
            (chunk.revision, chunk.history_id.as_str()),
            (revision, history.as_str())
        );
        for record in chunk.records {
            if let Some(proto::record::Kind::Workspace(ws)) = record.kind {
                workspaces.push(ws.workspace_id);
            }
        }
    }
    assert!(
        !workspaces.is_empty() && workspaces.len() < 30,
        "{workspaces:?}"
    );
    let expected: Vec<String> = (0..30)
        .map(|i| format!("ws{i:02}"))
        .filter(|id| accessd::model::selection::shard_of(id, 3) == 1)
        .collect();
    assert_eq!(workspaces, expected);
}

#[tokio::test]
async fn a_follower_refuses_snapshot_and_watch_and_the_stream_needs_the_admin_token() {
    let (dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(dir.path(), &["--admin-token", "s3cret"]).await;
    let refused = leader
        .replication()
        .watch(proto::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let follower =
        Node::follower(&leader, follower_dir.path(), &["--leader-token", "s3cret"]).await;
    let refused = follower
        .replication()
        .snapshot(proto::SnapshotRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains(&leader.addr),
        "{}",
        refused.message()
    );
}
