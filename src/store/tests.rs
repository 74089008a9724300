//! Replication through the store's interface: a leader's change feed, and a follower's
//! copy built from it by bootstrap steps and replicated groups, durable across reopens
//! and crashes.

use std::{path::Path, sync::Arc};

use super::{
    BootstrapStep, CHANGE_LOG_DIR, FeedError, Following, LoggedGroup, ReplicatedGroup, Store,
    StoreConfig, StoreError,
};
use crate::{
    engine::Command,
    model::{
        Catalog, Change, Grant, Membership, ProductSet, Scope, Selection, UserId, WorkspaceId,
    },
};

fn config(change_log_bytes: u64) -> StoreConfig {
    StoreConfig {
        change_log_bytes,
        ..StoreConfig::default()
    }
}

fn open(dir: &Path, change_log_bytes: u64) -> Store {
    Store::open(
        dir,
        Arc::new(Catalog::built_in()),
        &config(change_log_bytes),
    )
    .unwrap()
}

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

/// Workspaces `acme` and `globex`, each with `count` members holding a grant: one
/// revision per command.
fn commands(count: usize) -> Vec<Command> {
    let mut commands = Vec::new();
    for workspace in ["acme", "globex"] {
        commands.push(Command::CreateWorkspace {
            workspace: ws(workspace),
            owner: UserId::parse("olivia").unwrap(),
            products: ProductSet::default(),
        });
        commands.extend(members(workspace, 0..count));
    }
    commands
}

/// Members `range` of `workspace`, each with a grant.
fn members(workspace: &str, range: std::ops::Range<usize>) -> Vec<Command> {
    let role = Catalog::built_in().role_id("source_read").unwrap();
    range
        .flat_map(|i| {
            let user = UserId::parse(&format!("user-{i:04}")).unwrap();
            [
                Command::SetMembership {
                    workspace: ws(workspace),
                    user: user.clone(),
                    membership: Membership::Member,
                    actor: None,
                },
                Command::Grant {
                    workspace: ws(workspace),
                    user,
                    grant: Grant {
                        role,
                        scope: Scope::All,
                    },
                    actor: None,
                },
            ]
        })
        .collect()
}

async fn write(store: &Store, commands: Vec<Command>) {
    for chunk in commands.chunks(50) {
        for result in store.write_all(chunk.to_vec()).await.unwrap() {
            result.unwrap();
        }
    }
}

/// Every group the feed has after `after`, up to the published revision.
fn groups_after(store: &Store, after: u64) -> Vec<LoggedGroup> {
    let mut feed = store.changes_after(after).unwrap();
    let published = store.snapshot().revision;
    let mut groups = Vec::new();
    loop {
        let more = feed.next(published).unwrap();
        if more.is_empty() {
            break;
        }
        groups.extend(more);
    }
    groups
}

fn revisions(groups: &[LoggedGroup]) -> Vec<u64> {
    groups
        .iter()
        .flat_map(|g| g.entries.iter().map(|e| e.revision))
        .collect()
}

/// The same workspaces, with the same state, at the same revision.
fn assert_same(follower: &Store, leader: &Store, only: &Selection) {
    let (f, l) = (follower.snapshot(), leader.snapshot());
    assert_eq!(f.revision, l.revision);
    let mut held: Vec<_> = l
        .workspaces
        .iter()
        .filter(|(id, _)| only.holds(id))
        .map(|(id, w)| (id.to_owned(), w.clone()))
        .collect();
    let mut copied: Vec<_> = f
        .workspaces
        .iter()
        .map(|(id, w)| (id.to_owned(), w.clone()))
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    copied.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(copied, held);
}

#[tokio::test]
async fn the_feed_has_every_revision_after_the_one_asked_in_order_in_whole_groups() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of 8 KiB: the feed crosses many files.
    let leader = open(dir.path(), 64 << 10);
    write(&leader, commands(40)).await;
    let last = leader.snapshot().revision;
    assert_eq!(last, 162);
    assert_eq!(
        revisions(&groups_after(&leader, 0)),
        (1..=last).collect::<Vec<_>>()
    );
    assert!(
        std::fs::read_dir(dir.path().join(CHANGE_LOG_DIR))
            .unwrap()
            .count()
            > 3,
        "several segment files"
    );
    // From the middle of a group, the rest of it.
    assert_eq!(
        revisions(&groups_after(&leader, 75)),
        (76..=last).collect::<Vec<_>>()
    );
    assert!(groups_after(&leader, last).is_empty());
    leader.close();
}

#[tokio::test]
async fn a_feed_delivers_groups_as_they_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 64 << 10);
    let mut feed = leader.changes_after(0).unwrap();
    assert!(feed.next(0).unwrap().is_empty());
    write(&leader, commands(3)).await;
    let published = leader.snapshot().revision;
    let groups = feed.next(published).unwrap();
    assert_eq!(revisions(&groups), (1..=published).collect::<Vec<_>>());
    assert_eq!(groups[0].entries[0].command, "create_workspace");
    // Groups not yet published are held back.
    write(&leader, members("acme", 3..4)).await;
    assert!(feed.next(published).unwrap().is_empty());
    let now = leader.snapshot().revision;
    assert_eq!(
        revisions(&feed.next(now).unwrap()),
        (published + 1..=now).collect::<Vec<_>>()
    );
    leader.close();
}

#[tokio::test]
async fn a_revision_the_log_no_longer_holds_or_ahead_of_the_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 8 << 10);
    write(&leader, commands(60)).await;
    let published = leader.snapshot().revision;
    match leader.changes_after(0) {
        Err(FeedError::Trimmed { after: 0, oldest }) => assert!(oldest > 0),
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        leader.changes_after(published + 1),
        Err(FeedError::Ahead { .. })
    ));
    leader.close();
    let none = tempfile::tempdir().unwrap();
    let unlogged = open(none.path(), 0);
    assert!(matches!(
        unlogged.changes_after(0),
        Err(FeedError::Disabled)
    ));
    unlogged.close();
}

/// Replays the leader's groups into the follower, keeping only the selected
/// workspaces' changes, as a Watch stream does.
async fn replicate_all(follower: &Store, groups: Vec<LoggedGroup>, only: &Selection) {
    for group in groups {
        let end_revision = group.end_revision();
        let entries = group
            .entries
            .into_iter()
            .filter_map(|mut entry| {
                entry.changes.retain(|c| only.holds(c.workspace().as_str()));
                (!entry.changes.is_empty()).then_some(entry)
            })
            .collect();
        follower
            .replicate(ReplicatedGroup {
                entries,
                end_revision,
            })
            .await
            .unwrap();
    }
}

fn following(leader: &Store, selection: Selection) -> Following {
    Following {
        history: leader.identity().history.clone(),
        selection,
    }
}

#[tokio::test]
async fn a_follower_bootstrapped_then_replicated_holds_what_the_leader_holds() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = open(leader_dir.path(), 1 << 20);
    write(&leader, commands(20)).await;
    let at = leader.snapshot().revision;
    // The bootstrap: the leader's changes so far, as one copy at its revision.
    let changes: Vec<Change> = groups_after(&leader, 0)
        .into_iter()
        .flat_map(|g| g.entries)
        .flat_map(|e| e.changes)
        .collect();
    let follower = open(follower_dir.path(), 1 << 20);
    let before = follower.snapshot();
    follower.bootstrap(BootstrapStep::Begin).await.unwrap();
    let (first, rest) = changes.split_at(changes.len() / 2);
    for part in [first, rest] {
        follower
            .bootstrap(BootstrapStep::Changes(part.to_vec()))
            .await
            .unwrap();
        assert_eq!(
            follower.snapshot().revision,
            before.revision,
            "not published yet"
        );
    }
    follower
        .bootstrap(BootstrapStep::End {
            revision: at,
            following: Some(following(&leader, Selection::All)),
        })
        .await
        .unwrap();
    assert_same(&follower, &leader, &Selection::All);
    // Then the stream.
    write(&leader, members("globex", 20..25)).await;
    replicate_all(&follower, groups_after(&leader, at), &Selection::All).await;
    assert_same(&follower, &leader, &Selection::All);
    // A group that does not follow what the follower holds is refused, whole.
    let again = groups_after(&leader, at).remove(0);
    let refused = follower
        .replicate(ReplicatedGroup {
            end_revision: again.end_revision(),
            entries: again.entries,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Replication(_))),
        "{refused:?}"
    );
    // Reopened, it holds the same, and knows what it follows.
    follower.close();
    drop(follower);
    let follower = open(follower_dir.path(), 1 << 20);
    assert_same(&follower, &leader, &Selection::All);
    assert_eq!(
        follower.identity().following,
        Some(following(&leader, Selection::All))
    );
    assert_ne!(follower.identity().history, leader.identity().history);
    follower.close();
    leader.close();
}

#[tokio::test]
async fn a_partial_follower_holds_only_its_workspaces_at_the_leaders_revision() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = open(leader_dir.path(), 1 << 20);
    let only: Selection = "workspaces:globex".parse().unwrap();
    let follower = open(follower_dir.path(), 1 << 20);
    follower.bootstrap(BootstrapStep::Begin).await.unwrap();
    follower
        .bootstrap(BootstrapStep::End {
            revision: 0,
            following: Some(following(&leader, only.clone())),
        })
        .await
        .unwrap();
    write(&leader, commands(10)).await;
    // Every revision of `acme` (the first 21) arrives as a group with no entries.
    replicate_all(&follower, groups_after(&leader, 0), &only).await;
    assert_same(&follower, &leader, &only);
    assert_eq!(follower.snapshot().workspaces.len(), 1);
    // Its log skips the revisions of other workspaces, and reads back at open.
    follower.close();
    drop(follower);
    let follower = open(follower_dir.path(), 1 << 20);
    assert_same(&follower, &leader, &only);
    follower.close();
    leader.close();
}

#[tokio::test]
async fn a_bootstrap_interrupted_before_its_end_leaves_an_empty_copy() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = open(leader_dir.path(), 1 << 20);
    write(&leader, commands(5)).await;
    let changes: Vec<Change> = groups_after(&leader, 0)
        .into_iter()
        .flat_map(|g| g.entries)
        .flat_map(|e| e.changes)
        .collect();
    let follower = open(follower_dir.path(), 1 << 20);
    follower.bootstrap(BootstrapStep::Begin).await.unwrap();
    follower
        .bootstrap(BootstrapStep::Changes(changes))
        .await
        .unwrap();
    follower.close();
    drop(follower);
    let follower = open(follower_dir.path(), 1 << 20);
    assert_eq!(follower.snapshot().revision, 0);
    assert!(follower.snapshot().workspaces.is_empty());
    assert_eq!(follower.identity().following, None);
    follower.close();
    leader.close();
}
