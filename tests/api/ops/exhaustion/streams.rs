//! One connection opening 40,000 `ListAccess` streams and never reading them: the issue
//! measured 166 MB growing to 1.45 GB, never released.

use accessd::proto::{self, access_service_client::AccessServiceClient};
use prost::Message;
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::watch};
use tonic::transport::Channel;

use super::{
    ONE_AT_A_TIME, STEP_DEADLINE, Target,
    frames::{self, Calls, Said},
    resident::Memory,
};
use crate::ops::clients::{answered, import, member_records};

/// The streams the attacker opens on its one connection.
const STREAMS: u32 = 40_000;
/// The server's default `--max-concurrent-streams`.
const ADVERTISED: u32 = 256;
/// Members of the workspace listed, so that each answer held is a full page.
const MEMBERS: usize = 1_000;
/// Growth allowed with the advertised maximum of streams held: 256 answers of a
/// 100-row page, unsent, with their streams' state, measured at 6 MiB.
const HELD_GROWTH_MIB: u64 = 32;
/// Growth allowed once streams beyond the maximum are refused: the server closes the
/// connection after `--max-refused-streams` (1,024) refusals, measured at +12 MiB; with
/// no such bound, h2 queued a reset for every one of the 39,744 streams, 33 to 66 MiB,
/// and the 40,000 streams, held, took 1.3 GB.
const FLOOD_GROWTH_MIB: u64 = 48;

/// A normal `ListAccess`, answered.
async fn team_listed(channel: Channel) {
    let page = AccessServiceClient::new(channel)
        .list_access(proto::ListAccessRequest {
            workspace_id: "ws".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_thousand_unread_streams_on_one_connection_are_refused_beyond_the_maximum() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let target = Target::start(&[]).await;
    import(
        target.node.channel.clone(),
        member_records("ws", "user-", MEMBERS),
    )
    .await;
    let memory = Memory::watch(target.node.pid());

    let attacker = TcpStream::connect(&target.node.addr).await.unwrap();
    let (from, mut to) = attacker.into_split();
    let (said_sender, mut said) = watch::channel(Said::default());
    let listening = tokio::spawn(frames::listen(from, said_sender));
    let request = proto::ListAccessRequest {
        workspace_id: "ws".into(),
        ..Default::default()
    };
    let calls = Calls::new(
        &target.node.addr,
        "/accessd.v1.AccessService/ListAccess",
        &request.encode_to_vec(),
    );
    // A window of nothing: the server may send no byte of any answer.
    to.write_all(frames::PREFACE).await.unwrap();
    to.write_all(&frames::settings(0)).await.unwrap();
    to.write_all(&calls.streams(1, ADVERTISED)).await.unwrap();
    let all_answered = async {
        let held = said.wait_for(|said| said.answered == ADVERTISED as usize);
        held.await.map(|said| said.clone())
    };
    let held = tokio::time::timeout(STEP_DEADLINE, all_answered).await;
    let held = held.unwrap_or_else(|_| panic!("not all answered: {:?}", *said.borrow()));
    let held = held.unwrap();
    assert_eq!(held.max_concurrent_streams, Some(ADVERTISED), "{held:?}");
    assert_eq!(held.refused, 0, "{held:?}");
    memory.assert_within(HELD_GROWTH_MIB, "with 256 unread streams held");
    team_listed(target.another_client().await).await;

    let flood = async {
        // If the server closes the connection part-way through, the rest is not sent.
        let _ = to.write_all(&calls.streams(ADVERTISED + 1, STREAMS)).await;
    };
    tokio::join!(flood, team_listed(target.another_client().await));
    // Streams beyond the maximum are refused, until the server closes the connection
    // of a client that makes it refuse so many (`--max-refused-streams`).
    let beyond = (STREAMS - ADVERTISED) as usize;
    let refused = async {
        let all = said.wait_for(|said| said.closed || said.refused == beyond);
        all.await.map(|said| said.clone())
    };
    let said = tokio::time::timeout(STEP_DEADLINE, refused).await;
    let said = said.expect("streams beyond the maximum neither refused nor closed");
    let said = said.unwrap();
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("the attacker was told {said:?}");
    }
    assert_eq!(said.answered, ADVERTISED as usize, "{said:?}");
    assert!(said.closed, "{said:?}");
    assert_eq!(said.go_away, Some(frames::ENHANCE_YOUR_CALM), "{said:?}");
    memory.assert_within(FLOOD_GROWTH_MIB, "with 40,000 streams opened");

    drop(to);
    listening.abort();
    answered(target.another_client().await).await;
    team_listed(target.node.channel.clone()).await;
    memory.assert_within(FLOOD_GROWTH_MIB, "after the attacker left");
}
