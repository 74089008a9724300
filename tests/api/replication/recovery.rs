//! Followers through faults: killed while applying, fallen out of the leader's
//! retention, or cut off from a leader that died.

use std::time::Duration;

use accessd::proto;

use super::process::{Node, create, team};

/// Members `range` of `ws` with a grant each, written by 64 concurrent clients; returns
/// the highest revision acknowledged.
async fn write_members(leader: &Node, ws: &str, range: std::ops::Range<usize>) -> u64 {
    let users: Vec<usize> = range.collect();
    let mut last = 0;
    for wave in users.chunks(64) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in wave {
            let mut admin = leader.admin();
            let ws = ws.to_owned();
            tasks.spawn(async move {
                let user = format!("user-{i:05}");
                admin
                    .set_membership(crate::harness::membership_req(
                        &ws,
                        &user,
                        proto::Membership::Member,
                    ))
                    .await
                    .unwrap();
                admin
                    .grant(crate::harness::grant_req(
                        &ws,
                        &user,
                        "source_read",
                        crate::harness::all(),
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .revision
            });
        }
        while let Some(revision) = tasks.join_next().await {
            last = last.max(revision.unwrap());
        }
    }
    last
}

/// The revisions in the follower's change log, in file order.
fn logged_revisions(data_dir: &std::path::Path) -> Vec<u64> {
    let dir = data_dir.join("change_log");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut revisions = Vec::new();
    for name in names {
        for line in std::fs::read_to_string(dir.join(name)).unwrap().lines() {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            if entry["part"].as_u64() == Some(0) {
                revisions.push(entry["revision"].as_u64().unwrap());
            }
        }
    }
    revisions
}

#[tokio::test]
async fn a_follower_killed_while_applying_catches_up_with_no_gap_and_no_double() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(leader_dir.path(), &[]).await;
    let created = create(&leader, "acme").await;
    let mut follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    follower.wait_revision(created).await;
    for round in 0..3 {
        // Writes stream to the follower while it is killed.
        let writing = {
            let range = round * 300..(round + 1) * 300;
            write_members(&leader, "acme", range)
        };
        let killing = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            follower.kill();
        };
        let (last, ()) = tokio::join!(writing, killing);
        follower = follower.restart().await;
        follower.wait_revision(last).await;
        assert_eq!(
            team(&follower, "acme", last).await,
            team(&leader, "acme", last).await,
            "round {round}"
        );
    }
    // Its log holds each revision once, in order, from the one it bootstrapped at: it
    // resumed after each kill rather than bootstrapping again (which starts a new log).
    let logged = logged_revisions(follower_dir.path());
    assert_eq!(
        logged.first(),
        Some(&(created + 1)),
        "resumed, not bootstrapped again"
    );
    assert!(
        logged.windows(2).all(|w| w[0] < w[1]),
        "no double, in order"
    );
    let leader_revision = leader.status().await.revision;
    assert_eq!(logged.last(), Some(&leader_revision));
    assert_eq!(
        logged,
        (logged[0]..=leader_revision).collect::<Vec<_>>(),
        "no gap"
    );
}

#[tokio::test]
async fn a_follower_behind_the_leaders_retention_bootstraps_again() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A 1 MiB change log: a few thousand writes push out the oldest.
    let leader = Node::leader(leader_dir.path(), &["--change-log-mb", "1"]).await;
    let created = create(&leader, "acme").await;
    let mut follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    follower.wait_revision(created).await;
    follower.kill();
    let last = write_members(&leader, "acme", 0..3000).await;
    let oldest = std::fs::read_dir(leader_dir.path().join("change_log"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .min()
        .unwrap();
    assert!(
        oldest > created + 1,
        "the follower's revision is trimmed away"
    );
    follower = follower.restart().await;
    follower.wait_revision(last).await;
    assert_eq!(
        team(&follower, "acme", last).await,
        team(&leader, "acme", last).await
    );
}

#[tokio::test]
async fn the_leaders_death_turns_followers_not_serving_within_the_bound_unless_told_to_serve_stale()
{
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut leader = Node::leader(dirs[0].path(), &[]).await;
    create(&leader, "acme").await;
    let strict = Node::follower(&leader, dirs[1].path(), &["--stale-after", "2"]).await;
    let lenient = Node::follower(
        &leader,
        dirs[2].path(),
        &["--stale-after", "2", "--serve-stale"],
    )
    .await;
    for follower in [&strict, &lenient] {
        follower
            .wait_health("accessd.v1.AccessService", true, Duration::from_secs(30))
            .await;
    }
    leader.kill();
    // The bound is 2 s of silence; health is reassessed every 200 ms.
    let took = strict.wait_health("", false, Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_secs(1),
        "not before the bound: {took:?}"
    );
    assert!(!strict.serving("accessd.v1.AccessService").await);
    assert!(!strict.serving("accessd.v1.AdminService").await);
    // AdminService is forwarded, so it is NOT_SERVING on both once the leader is silent.
    lenient
        .wait_health("accessd.v1.AdminService", false, Duration::from_secs(10))
        .await;
    assert!(
        lenient.serving("accessd.v1.AccessService").await,
        "serves stale"
    );
    // Stale data is still answered by the lenient one, with its revision.
    let answer = lenient
        .access()
        .check(super::process::check_at(
            "acme",
            "olivia",
            "workspace.read",
            None,
            0,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.decision.unwrap().allowed);
    assert_eq!(strict.status().await.state, "disconnected");
}
