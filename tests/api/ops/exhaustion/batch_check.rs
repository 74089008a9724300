//! `BatchCheck`s of a million empty checks, 4 MB each: the issue measured 250 MB for one
//! before the 1,000-check cap refused it, 1.1 GB for eight at once.

use accessd::proto::access_service_client::AccessServiceClient;
use tokio::task::JoinSet;
use tonic::{Code, transport::Channel};

use super::{ONE_AT_A_TIME, Target, resident::Memory};
use crate::{
    harness::check_req,
    ops::clients::{call_raw, import, member_records},
};

/// The checks of one request, each an empty check spelled in four bytes (field 1, length
/// 2, holding `at_least_revision` 0 written out): 4 MB, under the 4 MiB limit of the
/// other services, so that only the AccessService's own refuses it.
const CHECKS: usize = 1_000_000;
/// Requests sent at once, each from a client of its own.
const AT_ONCE: usize = 8;
/// Times the eight are sent, to see that what one round leaves is reused by the next.
const ROUNDS: usize = 3;
/// Growth allowed: each request is refused from its 5-byte prefix, so what the server
/// holds of one is at most its stream's flow-control window (1 MiB) of unread body:
/// 8 MiB, with room for the allocator's rounding. Decoded, one request took 250 MB.
const GROWTH_MIB: u64 = 32;

fn oversized_batch() -> Vec<u8> {
    std::iter::repeat_n([0x0a, 0x02, 0x28, 0x00], CHECKS)
        .flatten()
        .collect()
}

/// A normal check, answered.
async fn checked(channel: Channel) {
    let answer = AccessServiceClient::new(channel)
        .check(check_req("ws", "user-7", "workspace.read", None))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_four_megabyte_batch_checks_at_once_are_refused_before_they_are_decoded() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let target = Target::start(&[]).await;
    import(
        target.node.channel.clone(),
        member_records("ws", "user-", 1_000),
    )
    .await;
    let body = bytes::Bytes::from(oversized_batch());
    assert_eq!(body.len(), 4 * CHECKS);
    let mut attackers = Vec::new();
    for _ in 0..AT_ONCE {
        attackers.push(target.another_client().await);
    }
    let other = target.another_client().await;
    let memory = Memory::watch(target.node.pid());

    for _ in 0..ROUNDS {
        let mut attack = JoinSet::new();
        for attacker in &attackers {
            let (attacker, body) = (attacker.clone(), body.clone());
            attack.spawn(call_raw(
                attacker,
                "/accessd.v1.AccessService/BatchCheck",
                body,
            ));
        }
        // Normal calls while the attack is in progress: at least one, until it ends.
        let mut refused = Vec::new();
        loop {
            checked(other.clone()).await;
            while let Some(answer) = attack.try_join_next() {
                refused.push(answer.unwrap());
            }
            if attack.is_empty() {
                break;
            }
        }
        for answer in refused {
            let status = answer.unwrap_err();
            assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
            assert!(status.message().contains("too large"), "{status:?}");
        }
        memory.assert_within(GROWTH_MIB, "with eight 4 MB batch checks refused");
    }
    checked(other).await;
    memory.assert_within(GROWTH_MIB, "after the batch checks");
}
