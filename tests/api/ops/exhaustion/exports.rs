//! 600 `Export` streams never read: the issue measured them filling the blocking pool,
//! and another client's `Export` timing out.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::Code;

use super::{ONE_AT_A_TIME, STEP_DEADLINE, Target, resident::Memory};
use crate::ops::clients::{
    answered, export_all, import, member_records, slow_reader, stalled_export,
};

/// The exports the attacker opens and never reads.
const EXPORTS: usize = 600;
/// Connections it opens them on: 200 streams each, within the 256 a connection may have.
const ATTACK_CONNECTIONS: usize = 3;
/// The server's default `--max-exports`.
const MAX_EXPORTS: usize = 32;
/// Members of the workspace exported, each named by an id of about 100 characters: an
/// export of 11 MB, more than the socket buffers Linux grows to by default on both ends
/// (4 MiB sending, 6 MiB receiving), so that an export whose reader stalls cannot end.
const MEMBERS: usize = 100_000;
/// Growth allowed with the most exports stalled: 32 of them, each holding about four
/// 110 KB messages, measured at 14 MiB in all. Had the server run all 600, they would
/// hold 260 MB.
const STALLED_GROWTH_MIB: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_unread_exports_are_refused_beyond_the_maximum_and_ended_when_stalled() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let target = Target::start(&["--export-stall-timeout", "5"]).await;
    let user_prefix = format!("{}-", "u".repeat(92));
    import(
        target.node.channel.clone(),
        member_records("ws", &user_prefix, MEMBERS),
    )
    .await;
    let memory = Memory::watch(target.node.pid());

    let mut attackers = Vec::new();
    for _ in 0..ATTACK_CONNECTIONS {
        attackers.push(slow_reader(&target.node.addr).await);
    }
    // All at once, as the attacker did, and well within the stall timeout: an
    // export stalled for that long is ended, and its place taken by the next.
    let mut opening = JoinSet::new();
    for i in 0..EXPORTS {
        opening.spawn(stalled_export(attackers[i % ATTACK_CONNECTIONS].clone()));
    }
    let mut stalled = Vec::new();
    let mut refused = 0;
    for opened in opening.join_all().await {
        match opened {
            Ok(stream) => stalled.push(stream),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(stalled.len(), MAX_EXPORTS);
    assert_eq!(refused, EXPORTS - MAX_EXPORTS);
    memory.assert_within(STALLED_GROWTH_MIB, "with 32 unread exports running");
    let other = target.another_client().await;
    answered(other.clone()).await;
    // Another client's export is refused at once while the attacker's run, not left to
    // time out.
    let status = export_all(other.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Once the stall timeout has passed, the attacker, still connected and reading
    // nothing, holds no export: another client's runs to its end.
    let started = Instant::now();
    let records = loop {
        match export_all(other.clone()).await {
            Ok(records) => break records,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(started.elapsed() < STEP_DEADLINE, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    };
    assert_eq!(records, MEMBERS + 1);
    // Read together: the streams of a connection share its window.
    let mut ends = JoinSet::new();
    for mut stream in stalled {
        ends.spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("a stalled export ended as if complete"),
                    Err(status) => return status,
                }
            }
        });
    }
    let ended = tokio::time::timeout(STEP_DEADLINE, ends.join_all()).await;
    for status in ended.expect("a stalled export was not ended") {
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("took nothing"), "{status:?}");
    }
    answered(other).await;
    memory.assert_within(STALLED_GROWTH_MIB, "after the stalled exports ended");
}
