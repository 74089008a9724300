//! Import's progress: each batch acknowledged once durable while the stream is still
//! open, and a broken import resumed from the last acknowledgement.

use accessd::proto::{self, record::Kind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::harness::*;

/// Records the server applies per batch.
const BATCH: usize = 20_000;

/// Workspace acme, then `count` members of it; record `bad`, if any, is empty.
fn acme_with_members(count: usize, bad: Option<usize>) -> Vec<proto::Record> {
    let workspace = Kind::Workspace(proto::WorkspaceRecord {
        workspace_id: "acme".into(),
        products: vec!["connections".into()],
        owner_user_ids: vec!["olivia".into()],
    });
    let members = (0..count).map(|i| {
        Kind::Member(proto::MemberRecord {
            workspace_id: "acme".into(),
            user_id: format!("user-{i:06}"),
            membership: proto::Membership::Member.into(),
        })
    });
    let mut records: Vec<proto::Record> = std::iter::once(workspace)
        .chain(members)
        .map(|kind| proto::Record { kind: Some(kind) })
        .collect();
    if let Some(bad) = bad {
        records[bad].kind = None;
    }
    records
}

async fn export_all(server: &TestServer) -> Vec<proto::Record> {
    let mut stream = server
        .admin()
        .export(proto::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        records.extend(chunk.records);
    }
    records
}

/// An import whose stream stays open until `sender` is dropped.
async fn open_import(
    server: &TestServer,
) -> (
    mpsc::Sender<proto::ImportRequest>,
    tonic::Streaming<proto::ImportProgress>,
) {
    let (sender, receiver) = mpsc::channel(1_000);
    let progress = server
        .admin()
        .import(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    (sender, progress)
}

async fn send_all(sender: &mpsc::Sender<proto::ImportRequest>, records: &[proto::Record]) {
    for chunk in import_chunks(records, 2_000) {
        sender.send(chunk).await.unwrap();
    }
}

#[tokio::test]
async fn a_large_import_is_acknowledged_batch_by_batch_before_its_stream_ends() {
    let server = TestServer::start().await;
    let records = acme_with_members(65_000, None);
    let (sender, mut progress) = open_import(&server).await;
    send_all(&sender, &records[..2 * BATCH + 1]).await;
    let first = progress.message().await.unwrap().unwrap();
    assert_eq!(first.next_index, BATCH as u64, "{first:?}");
    assert!(!first.done && first.revision > 0, "{first:?}");

    send_all(&sender, &records[2 * BATCH + 1..]).await;
    drop(sender);
    let mut messages = vec![first];
    while let Some(message) = progress.message().await.unwrap() {
        messages.push(message);
    }
    let acknowledged: Vec<(u64, bool)> = messages.iter().map(|m| (m.next_index, m.done)).collect();
    assert_eq!(
        acknowledged,
        [
            (20_000, false),
            (40_000, false),
            (60_000, false),
            (65_001, false),
            (65_001, true)
        ]
    );
    let revisions: Vec<u64> = messages.iter().map(|m| m.revision).collect();
    assert!(
        revisions.windows(2).take(3).all(|w| w[0] < w[1]),
        "each batch has a revision of its own: {revisions:?}"
    );
    let last = messages.last().unwrap();
    assert_eq!(
        (
            last.records,
            last.applied,
            last.batches,
            last.rejected_count
        ),
        (65_001, 65_001, 4, 0)
    );
    assert_eq!(last.revision, server.revision().await);
}

#[tokio::test]
async fn an_import_cut_after_a_batch_keeps_what_was_acknowledged_and_resumes_from_there() {
    let records = acme_with_members(70_000, Some(65_000));
    let server = TestServer::start().await;
    let (sender, mut progress) = open_import(&server).await;
    send_all(&sender, &records[..3 * BATCH]).await;
    let acknowledged = progress.message().await.unwrap().unwrap();
    let resume_at = acknowledged.next_index as usize;
    assert_eq!(resume_at, BATCH);
    // The client goes away: the call is cancelled, its stream never ended.
    drop((sender, progress));

    let server = server.restart().await;
    let exported: std::collections::HashSet<Vec<u8>> = export_all(&server)
        .await
        .iter()
        .map(prost::Message::encode_to_vec)
        .collect();
    for record in &records[..resume_at] {
        let encoded = prost::Message::encode_to_vec(record);
        assert!(exported.contains(&encoded), "{record:?} was acknowledged");
    }
    assert!(exported.len() <= 3 * BATCH, "no record past those sent");

    let mut resumed = import_chunks(&records[resume_at..], 2_000);
    resumed[0].first_index = resume_at as u64;
    let report = import_to_end(server.admin().import(tokio_stream::iter(resumed)).await)
        .await
        .unwrap();
    assert_eq!(report.next_index, records.len() as u64);
    assert_eq!(report.records, (records.len() - resume_at) as u64);
    let rejected: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, 65_000, "the client's index: {rejected:?}");

    let clean = TestServer::start().await;
    let chunks = import_chunks(&records, 2_000);
    import_to_end(clean.admin().import(tokio_stream::iter(chunks)).await)
        .await
        .unwrap();
    assert_eq!(export_all(&server).await, export_all(&clean).await);
}

#[tokio::test]
async fn only_the_first_message_of_an_import_may_say_where_it_starts() {
    let server = TestServer::start().await;
    let records = acme_with_members(2, None);
    let mut chunks = import_chunks(&records, 2);
    chunks.push(proto::ImportRequest {
        records: Vec::new(),
        first_index: 7,
    });
    let status = import_to_end(server.admin().import(tokio_stream::iter(chunks)).await)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`first_index`: only the first message of an import may set it"
    );
}
