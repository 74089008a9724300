//! The clients the limit tests play, in process or against a real process: a raw caller
//! sending bodies no generated client would, an importer, exporters that read all or
//! nothing, and the normal call that must still be answered.

use accessd::proto::{self, admin_service_client::AdminServiceClient, record::Kind};
use bytes::{Buf, BufMut, Bytes};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::{import_chunks, import_to_end};

/// Sends and receives message bodies as they are, to send what no generated client would.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Calls the unary `method` with `body` as its request message.
pub async fn call_raw(
    channel: Channel,
    method: &'static str,
    body: impl Into<Bytes>,
) -> Result<Bytes, Status> {
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary(
            tonic::Request::new(body.into()),
            http::uri::PathAndQuery::from_static(method),
            RawCodec,
        )
        .await
        .map(tonic::Response::into_inner)
}

/// A normal call, answered.
pub async fn answered(channel: Channel) {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await;
    assert!(response.is_ok(), "{response:?}");
}

/// Workspace `workspace`, owned by `owner`, with `members` members named
/// `{member_prefix}{i}`.
pub fn member_records(workspace: &str, member_prefix: &str, members: usize) -> Vec<proto::Record> {
    let owner = proto::Record {
        kind: Some(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: workspace.into(),
            products: Vec::new(),
            owner_user_ids: vec!["owner".into()],
        })),
    };
    let members = (0..members).map(|i| proto::Record {
        kind: Some(Kind::Member(proto::MemberRecord {
            workspace_id: workspace.into(),
            user_id: format!("{member_prefix}{i}"),
            membership: proto::Membership::Member.into(),
        })),
    });
    std::iter::once(owner).chain(members).collect()
}

/// Imports `records`, all accepted.
pub async fn import(channel: Channel, records: Vec<proto::Record>) {
    let chunks = import_chunks(&records, 1_000);
    let report = import_to_end(
        AdminServiceClient::new(channel)
            .import(tokio_stream::iter(chunks))
            .await,
    )
    .await
    .unwrap();
    assert_eq!(report.rejected_count, 0, "{report:?}");
}

/// Reads an export to its end; the number of records.
pub async fn export_all(channel: Channel) -> Result<usize, Status> {
    let mut stream = AdminServiceClient::new(channel)
        .export(proto::ExportRequest::default())
        .await?
        .into_inner();
    let mut records = 0;
    while let Some(chunk) = stream.message().await? {
        records += chunk.records.len();
    }
    Ok(records)
}

/// A client that takes little before it reads: HTTP/2's smallest windows, 64 KiB.
pub async fn slow_reader(addr: impl std::fmt::Display) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap()
}

/// Opens an export and reads nothing.
pub async fn stalled_export(
    channel: Channel,
) -> Result<tonic::Streaming<proto::ExportResponse>, Status> {
    AdminServiceClient::new(channel)
        .export(proto::ExportRequest::default())
        .await
        .map(tonic::Response::into_inner)
}
