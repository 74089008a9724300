//! The bounds on what callers can hold: malformed and oversized requests, streams per
//! connection, stalled exports, the connection cap and the idle timeout. Each test ends
//! with a normal call still answered.

use std::{sync::Arc, time::Duration};

use accessd::{
    model::Catalog,
    proto,
    server::{Limits, ServeOptions},
};
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::*;

use super::{
    STOP_DEADLINE,
    clients::{
        answered, call_raw, export_all, import, member_records, slow_reader, stalled_export,
    },
};

/// A guard for a call expected to wait, not to be answered: long enough that an answer
/// would have come.
const WAITS: Duration = Duration::from_millis(500);

async fn start(limits: Limits) -> TestServer {
    let options = ServeOptions {
        limits,
        ..ServeOptions::default()
    };
    TestServer::start_with(
        Arc::new(tempfile::tempdir().unwrap()),
        Catalog::built_in(),
        options,
    )
    .await
}

async fn connect(server: &TestServer) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_naming_the_method() {
    let server = TestServer::start().await;
    // Field 1 is a string in each request below.
    let malformed: [(&str, Vec<u8>); 3] = [
        ("a non-UTF-8 string", vec![0x0a, 0x02, 0xff, 0xfe]),
        ("a truncated message", vec![0x0a, 0x05, b'a']),
        ("a wrong wire type", vec![0x08, 0x01]),
    ];
    let methods = [
        "/accessd.v1.AccessService/Check",
        "/accessd.v1.AdminService/CreateWorkspace",
        "/grpc.health.v1.Health/Check",
    ];
    for method in methods {
        for (what, body) in &malformed {
            let status = call_raw(server.channel.clone(), method, body.clone())
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{what} to {method}: {status:?}"
            );
            assert!(
                status.message().starts_with(&format!(
                    "the request to `{method}` could not be decoded as its protobuf message: "
                )),
                "{what} to {method}: {status:?}"
            );
        }
    }
    answered(server.channel.clone()).await;
}

#[tokio::test]
async fn an_oversized_batch_check_is_refused_before_it_is_decoded() {
    let server = TestServer::start().await;
    // A million empty checks, 2 MB: decoded, it would hold hundreds of MB before the
    // 1,000-check cap refused it.
    let body: Vec<u8> = std::iter::repeat_n([0x0a, 0x00], 1_000_000)
        .flatten()
        .collect();
    let status = call_raw(
        server.channel.clone(),
        "/accessd.v1.AccessService/BatchCheck",
        body,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    answered(server.channel.clone()).await;
}

#[tokio::test]
async fn the_largest_batch_check_allowed_is_within_the_message_limit() {
    let server = TestServer::start().await;
    let long = |c: char| std::iter::repeat_n(c, 128).collect::<String>();
    let check = proto::CheckRequest {
        workspace_id: long('w'),
        user_id: long('u'),
        permission: "connection.update_permissions".into(),
        resource: res("connection", &long('r')),
        at_least_revision: u64::MAX,
    };
    let request = proto::BatchCheckRequest {
        checks: vec![check; 1_000],
        at_least_revision: u64::MAX,
    };
    let answer = server.access().batch_check(request).await;
    // Decoded and judged, whatever the judgement (the workspace does not exist).
    let status = answer.err().map(|status| status.code());
    assert_ne!(status, Some(Code::OutOfRange));
    answered(server.channel.clone()).await;
}

#[tokio::test]
async fn streams_beyond_the_advertised_maximum_wait_for_one_to_end() {
    let server = start(Limits {
        max_concurrent_streams: 4,
        ..Limits::default()
    })
    .await;
    let channel = connect(&server).await;
    let mut watches = Vec::new();
    for _ in 0..4 {
        let mut watch = HealthClient::new(channel.clone())
            .watch(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        watch.message().await.unwrap().unwrap();
        watches.push(watch);
    }
    let mut fifth = Box::pin(answered(channel.clone()));
    assert!(
        tokio::time::timeout(WAITS, &mut fifth).await.is_err(),
        "a fifth stream on the connection was answered while four were open"
    );
    answered(server.channel.clone()).await;
    drop(watches.pop());
    tokio::time::timeout(STOP_DEADLINE, fifth).await.unwrap();
}

/// More records (about 500 KiB) than an export buffers for a slow reader, so that one
/// whose reader stalls waits.
const EXPORT_RECORDS: usize = 16_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_whose_readers_stall_do_not_stop_another_clients_export() {
    // More stalled exports than the blocking pool has threads (512).
    const STALLED: usize = 600;
    let server = start(Limits {
        max_exports: STALLED + 1,
        max_concurrent_streams: 1_000,
        ..Limits::default()
    })
    .await;
    import(
        server.channel.clone(),
        member_records("ws", "user-", EXPORT_RECORDS),
    )
    .await;
    let attacker = slow_reader(server.addr).await;
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stalled_export(attacker.clone()).await.unwrap());
    }
    let records = tokio::time::timeout(STOP_DEADLINE, export_all(server.channel.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(records, EXPORT_RECORDS + 1);
    drop(stalled);
    answered(server.channel.clone()).await;
}

#[tokio::test]
async fn an_export_beyond_the_maximum_is_refused_and_a_stalled_one_is_ended() {
    let stall_timeout = Duration::from_secs(1);
    let server = start(Limits {
        max_exports: 1,
        export_stall_timeout: stall_timeout,
        ..Limits::default()
    })
    .await;
    import(
        server.channel.clone(),
        member_records("ws", "user-", EXPORT_RECORDS),
    )
    .await;
    let mut stalled = stalled_export(slow_reader(server.addr).await)
        .await
        .unwrap();
    let refused = export_all(server.channel.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Stalling for longer than the stall timeout is what is tested.
    tokio::time::sleep(stall_timeout * 2).await;
    let ended = loop {
        match stalled.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a stalled export ended as if complete"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(ended.message().contains("took nothing"), "{ended:?}");
    let records = export_all(server.channel.clone()).await.unwrap();
    assert_eq!(records, EXPORT_RECORDS + 1);
}

/// Waits for the server to close `stream`: end of file, or a reset.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buffer = [0u8; 1024];
    let closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(STOP_DEADLINE, closed)
        .await
        .expect("the server did not close the connection");
}

#[tokio::test]
async fn a_connection_beyond_the_maximum_is_closed_at_once() {
    // The harness's own channel holds one.
    let server = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let second = TcpStream::connect(server.addr).await.unwrap();
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    closed_by_server(&mut third).await;
    answered(server.channel.clone()).await;
    drop(second);
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_one_with_a_call_in_progress_is_kept() {
    let server = start(Limits {
        idle_timeout: Some(Duration::from_secs(1)),
        ..Limits::default()
    })
    .await;
    let mut watch = HealthClient::new(connect(&server).await)
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().unwrap();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    closed_by_server(&mut idle).await;
    // Closed, the watch would have ended with an error by now.
    assert!(
        tokio::time::timeout(WAITS, watch.message()).await.is_err(),
        "the connection of a call in progress was closed"
    );
    answered(server.channel.clone()).await;
}
