//! 10,100 idle TCP connections: the issue measured 680 MB held, never closed.

use std::{
    io::ErrorKind,
    time::{Duration, Instant},
};

use accessd::server::Limits;
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{ONE_AT_A_TIME, STEP_DEADLINE, Target, allow_open_files, resident::Memory};
use crate::ops::clients::{answered, import, member_records};

/// The connections the attacker opens, and leaves idle.
const CONNECTIONS: usize = 10_100;
/// This process and the server each hold an end of every connection the server keeps:
/// 4,094 at once, or all of them if idle ones are closed while the attack goes on. Both
/// need a few hundred more for everything else.
const OPEN_FILES: u64 = CONNECTIONS as u64 + 1_000;
/// Connections opened before the server has taken them all. The server listens with a
/// backlog of 128: a longer wave overflows it, and the kernel drops the next connection's
/// SYN, which its client sends again only a second later.
const WAVE: usize = 100;
/// Growth allowed with the most connections held: 4,096 of them, measured at about
/// 30 KiB each (120 MiB), plus half again. Had the server kept all 10,100, they would
/// take 300 MiB.
const HELD_GROWTH_MIB: u64 = 192;

/// What the server did with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Kept it: it sent its HTTP/2 SETTINGS.
    Held,
    /// Closed it.
    Closed,
}

/// Waits until the server has taken `stream`, reading what it sent.
async fn taken(stream: &TcpStream) -> Taken {
    let mut buffer = [0; 1024];
    loop {
        stream.readable().await.unwrap();
        match stream.try_read(&mut buffer) {
            Ok(0) => return Taken::Closed,
            Ok(_) => return Taken::Held,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Taken::Closed,
        }
    }
}

/// Waits until the server has closed `stream`, which it has taken.
async fn closed(stream: &TcpStream) {
    let mut buffer = [0; 1024];
    loop {
        stream.readable().await.unwrap();
        match stream.try_read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Whether `stream` is still open, as far as this process has heard.
fn open(stream: &TcpStream) -> bool {
    match stream.try_read(&mut [0; 1]) {
        Ok(read) => read > 0,
        Err(error) => error.kind() == ErrorKind::WouldBlock,
    }
}

/// Opens `n` connections to `addr` that never send a byte, each taken by the server;
/// those it kept, and how many it closed at once.
async fn idle_connections(addr: &str, n: usize) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::new();
    let mut closed_at_once = 0;
    let mut left = n;
    while left > 0 {
        let mut wave = Vec::with_capacity(WAVE.min(left));
        for _ in 0..WAVE.min(left) {
            wave.push(TcpStream::connect(addr).await.unwrap());
        }
        left -= wave.len();
        for stream in wave {
            let taking = tokio::time::timeout(STEP_DEADLINE, taken(&stream)).await;
            match taking.expect("the server did not take a connection") {
                Taken::Held => held.push(stream),
                Taken::Closed => closed_at_once += 1,
            }
        }
    }
    (held, closed_at_once)
}

/// A new client answered, once the server has let go of enough connections to take it.
async fn new_client_answered(addr: &str) {
    let started = Instant::now();
    loop {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await;
        if let Ok(channel) = channel {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            if answer.is_ok() {
                return;
            }
        }
        assert!(
            started.elapsed() < STEP_DEADLINE,
            "no new client was answered"
        );
        // The server closes connections it had held as it notices them closed.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_maximum_are_closed_at_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    allow_open_files(OPEN_FILES);
    let target = Target::start(&[]).await;
    import(
        target.node.channel.clone(),
        member_records("ws", "user-", 1_000),
    )
    .await;
    let other = target.another_client().await;
    answered(other.clone()).await;
    let memory = Memory::watch(target.node.pid());

    let (attack, closed_at_once) = idle_connections(&target.node.addr, CONNECTIONS).await;
    // The harness's own client and `other` hold one connection each.
    let kept = Limits::DEFAULT_MAX_CONNECTIONS - 2;
    assert_eq!(attack.len(), kept);
    assert_eq!(closed_at_once, CONNECTIONS - kept);
    memory.assert_within(HELD_GROWTH_MIB, "with 4,094 idle connections held");
    answered(other.clone()).await;
    // Clients already connected are answered; a new one is closed at once while the
    // attacker holds the rest, at the default idle timeout for five minutes.
    let (newcomer, refused) = idle_connections(&target.node.addr, 1).await;
    assert_eq!((newcomer.len(), refused), (0, 1));
    assert!(
        attack.iter().all(open),
        "the server closed held connections"
    );

    drop(attack);
    new_client_answered(&target.node.addr).await;
    answered(other).await;
    memory.assert_within(HELD_GROWTH_MIB, "after the idle connections closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let _alone = ONE_AT_A_TIME.lock().await;
    allow_open_files(OPEN_FILES);
    let target = Target::start(&["--idle-timeout", "2"]).await;
    import(
        target.node.channel.clone(),
        member_records("ws", "user-", 1_000),
    )
    .await;
    // A call in progress keeps the other client's connection, however long it is idle.
    let other = target.another_client().await;
    let mut watch = HealthClient::new(other.clone())
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().unwrap();
    let memory = Memory::watch(target.node.pid());

    let (attack, closed_at_once) = idle_connections(&target.node.addr, CONNECTIONS).await;
    // Should the attack take longer than the idle timeout, those first held are closed
    // and more are held in their place, never more than the maximum at once.
    assert!(attack.len() >= Limits::DEFAULT_MAX_CONNECTIONS - 2);
    assert_eq!(attack.len() + closed_at_once, CONNECTIONS);
    memory.assert_within(HELD_GROWTH_MIB, "while the idle connections were held");
    answered(other.clone()).await;
    for stream in &attack {
        let closing = tokio::time::timeout(STEP_DEADLINE, closed(stream)).await;
        closing.expect("an idle connection was not closed");
    }

    new_client_answered(&target.node.addr).await;
    answered(other).await;
    memory.assert_within(HELD_GROWTH_MIB, "after the idle timeout");
    drop(watch);
}
