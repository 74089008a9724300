//! AdminService on a follower: every call goes on to the leader, carrying only the
//! caller's credentials, deadline and trace context, and is answered with the leader's
//! response. It checks nothing itself: the leader authenticates, validates and writes.

use std::{future::Future, pin::Pin, sync::Arc};

use arc_swap::ArcSwap;
use http::uri::PathAndQuery;
use tokio::sync::oneshot;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{
    Code, Request, Response, Status, Streaming,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
    metadata::MetadataMap,
    transport::Channel,
};
use tonic_prost::{ProstDecoder, ProstEncoder};

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{deadline, trace_context};
use crate::proto::{
    self, admin_service_client::AdminServiceClient, admin_service_server::AdminService,
};

/// The header holding the caller's credentials, which only the leader checks.
const AUTHORIZATION: &str = "authorization";

/// The AdminService of a follower: a proxy of the leader's.
#[derive(Clone)]
pub struct LeaderForward {
    /// The channel to the leader as it is now (it is built anew when TLS files change).
    leader: Arc<ArcSwap<Channel>>,
    /// The leader's URL, named in the status of a call that could not reach it.
    address: String,
}

impl LeaderForward {
    /// A service forwarding every call over `leader`, the channel to `address`.
    pub fn new(leader: Arc<ArcSwap<Channel>>, address: String) -> Self {
        Self { leader, address }
    }

    fn client(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(Channel::clone(&self.leader.load()))
    }

    /// Forwards a call whose request is one message: `call` sends the outgoing request
    /// with the client it is given.
    async fn forward<M, R, F>(
        &self,
        method: &'static str,
        request: Request<M>,
        call: impl FnOnce(AdminServiceClient<Channel>, Request<M>) -> F,
    ) -> Result<Response<R>, Status>
    where
        F: Future<Output = Result<Response<R>, Status>>,
    {
        tracing::debug!(method, "forwarding to the leader");
        let (metadata, _, message) = request.into_parts();
        let answer = call(self.client(), outgoing(&metadata, message)).await;
        answer
            .map(|response| Response::new(response.into_inner()))
            .map_err(|status| leader_status(&self.address, status))
    }
}

/// The request to send the leader: `message` with the caller's credentials, deadline
/// and trace and nothing else, since the other headers describe this hop, not the call.
fn outgoing<T>(inbound: &MetadataMap, message: T) -> Request<T> {
    let mut request = Request::new(message);
    for credential in inbound.get_all(AUTHORIZATION) {
        request
            .metadata_mut()
            .append(AUTHORIZATION, credential.clone());
    }
    if let Some(timeout) = deadline::timeout(inbound) {
        request.set_timeout(timeout);
    }
    pass_on_trace(inbound, request.metadata_mut());
    request
}

/// Tells the leader which trace the call is part of: when spans are exported, as a child
/// of this follower's span of the call; otherwise as the caller sent it, so that the
/// leader's log lines show the caller's trace id.
fn pass_on_trace(inbound: &MetadataMap, outbound: &mut MetadataMap) {
    if trace_context::inject(&tracing::Span::current().context(), outbound) {
        return;
    }
    if let Some(caller) = trace_context::extract(inbound.as_ref()) {
        trace_context::inject(&caller.context, outbound);
    }
}

/// The caller's status for a call the leader failed: the leader's own, or, if the call
/// never got the leader's answer, one that names the leader.
fn leader_status(address: &str, mut status: Status) -> Status {
    // tonic keeps the cause of a status it makes from a local failure (connecting, a
    // broken connection, its own timer); a status the leader sent has none.
    if std::error::Error::source(&status).is_none() {
        // The leader's headers describe its hop; the code, message and details are the answer.
        *status.metadata_mut() = MetadataMap::new();
        return status;
    }
    let cause = cause(&status);
    tracing::warn!(leader = address, cause, "the call to the leader failed");
    let message = match status.code() {
        Code::Unavailable => format!(
            "the leader `{address}` cannot be reached: {cause}; \
             this follower forwards AdminService calls to it"
        ),
        _ => format!("the call to the leader `{address}` failed: {cause}"),
    };
    Status::new(status.code(), message)
}

/// What made a local failure: the status's message and, if it says more, the last error
/// of its source chain ("tcp connect error: Connection refused (os error 111)").
fn cause(status: &Status) -> String {
    let mut root = std::error::Error::source(status);
    while let Some(deeper) = root.and_then(std::error::Error::source) {
        root = Some(deeper);
    }
    match root.map(ToString::to_string) {
        Some(root) if !status.message().contains(&root) => format!("{}: {root}", status.message()),
        _ => status.message().to_owned(),
    }
}

/// The path of Import on the leader.
const IMPORT: &str = "/accessd.v1.AdminService/Import";

/// Import's codec towards the leader: it takes the caller's stream as it comes, so that a
/// failure in it fails the request body. The leader then sees its stream reset with an
/// error and applies nothing it has not yet committed; a stream that simply ended (or was
/// cancelled, which tonic reads as an end) would be taken for a complete import.
struct ImportCodec {
    /// Where the caller's failure goes, for the encoder to take.
    failed: Option<oneshot::Sender<Status>>,
}

impl Codec for ImportCodec {
    type Encode = Result<proto::ImportRequest, Status>;
    type Decode = proto::ImportProgress;
    type Encoder = ImportEncoder;
    type Decoder = ProstDecoder<proto::ImportProgress>;

    fn encoder(&mut self) -> Self::Encoder {
        ImportEncoder {
            chunks: ProstEncoder::default(),
            failed: self.failed.take(),
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Encodes the caller's chunks, and fails at the first failure of its stream.
struct ImportEncoder {
    chunks: ProstEncoder<proto::ImportRequest>,
    /// Where that failure goes, since the leader never sees it.
    failed: Option<oneshot::Sender<Status>>,
}

impl Encoder for ImportEncoder {
    type Item = Result<proto::ImportRequest, Status>;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let status = match item {
            Ok(chunk) => return self.chunks.encode(chunk, dst),
            Err(status) => status,
        };
        if let Some(failed) = self.failed.take() {
            // No receiver means the call has been answered already, and that answer stands.
            let _ = failed.send(status.clone());
        }
        Err(status)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.chunks.buffer_settings()
    }
}

#[tonic::async_trait]
impl AdminService for LeaderForward {
    type ImportStream = Pin<Box<dyn Stream<Item = Result<proto::ImportProgress, Status>> + Send>>;
    type ExportStream = Pin<Box<dyn Stream<Item = Result<proto::ExportResponse, Status>> + Send>>;

    async fn import(
        &self,
        request: Request<Streaming<proto::ImportRequest>>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        tracing::debug!(method = "Import", "forwarding to the leader");
        let (metadata, _, inbound) = request.into_parts();
        let (failed, mut failure) = oneshot::channel();
        let codec = ImportCodec {
            failed: Some(failed),
        };
        let mut leader = tonic::client::Grpc::new(Channel::clone(&self.leader.load()));
        let answer = match leader.ready().await {
            Ok(()) => {
                let path = PathAndQuery::from_static(IMPORT);
                let request = outgoing(&metadata, inbound);
                leader.streaming(request, path, codec).await
            }
            Err(err) => Err(Status::from_error(err.into())),
        };
        let address = self.address.clone();
        // The leader's answer to a stream that failed here is only that it was reset.
        // The encoder reports the failure before it fails the body, so it is there.
        let mut caller_status = move |status| {
            failure
                .try_recv()
                .unwrap_or_else(|_| leader_status(&address, status))
        };
        match answer {
            Ok(response) => {
                let progress = response
                    .into_inner()
                    .map(move |message| message.map_err(&mut caller_status));
                Ok(Response::new(Box::pin(progress)))
            }
            Err(status) => Err(caller_status(status)),
        }
    }

    async fn export(
        &self,
        request: Request<proto::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let chunks = self
            .forward("Export", request, |mut leader, request| async move {
                leader.export(request).await
            })
            .await?
            .into_inner();
        let address = self.address.clone();
        let chunks =
            chunks.map(move |chunk| chunk.map_err(|status| leader_status(&address, status)));
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn create_workspace(
        &self,
        request: Request<proto::CreateWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward(
            "CreateWorkspace",
            request,
            |mut leader, request| async move { leader.create_workspace(request).await },
        )
        .await
    }

    async fn set_products(
        &self,
        request: Request<proto::SetProductsRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward("SetProducts", request, |mut leader, request| async move {
            leader.set_products(request).await
        })
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<proto::DeleteWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward(
            "DeleteWorkspace",
            request,
            |mut leader, request| async move { leader.delete_workspace(request).await },
        )
        .await
    }

    async fn set_membership(
        &self,
        request: Request<proto::SetMembershipRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward("SetMembership", request, |mut leader, request| async move {
            leader.set_membership(request).await
        })
        .await
    }

    async fn remove_member(
        &self,
        request: Request<proto::RemoveMemberRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward("RemoveMember", request, |mut leader, request| async move {
            leader.remove_member(request).await
        })
        .await
    }

    async fn register_resource(
        &self,
        request: Request<proto::RegisterResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward(
            "RegisterResource",
            request,
            |mut leader, request| async move { leader.register_resource(request).await },
        )
        .await
    }

    async fn delete_resource(
        &self,
        request: Request<proto::DeleteResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward(
            "DeleteResource",
            request,
            |mut leader, request| async move { leader.delete_resource(request).await },
        )
        .await
    }

    async fn grant(
        &self,
        request: Request<proto::GrantRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward("Grant", request, |mut leader, request| async move {
            leader.grant(request).await
        })
        .await
    }

    async fn revoke(
        &self,
        request: Request<proto::RevokeRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.forward("Revoke", request, |mut leader, request| async move {
            leader.revoke(request).await
        })
        .await
    }

    async fn migrate_legacy_roles(
        &self,
        request: Request<proto::MigrateLegacyRolesRequest>,
    ) -> Result<Response<proto::MigrateLegacyRolesResponse>, Status> {
        self.forward(
            "MigrateLegacyRoles",
            request,
            |mut leader, request| async move { leader.migrate_legacy_roles(request).await },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_the_credentials_and_the_deadline_go_to_the_leader() {
        let mut inbound = MetadataMap::new();
        for (key, value) in [
            ("authorization", "Bearer s3cret"),
            ("grpc-timeout", "250m"),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("user-agent", "tonic/0.14"),
            ("x-request-id", "42"),
        ] {
            inbound.insert(key, value.parse().unwrap());
        }
        let request = outgoing(&inbound, ());
        let mut sent: Vec<_> = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(key, value)| format!("{key}: {}", value.to_str().unwrap()))
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            ["authorization: Bearer s3cret", "grpc-timeout: 250000u"]
        );
        assert_eq!(
            deadline::timeout(request.metadata()),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn the_caller_s_trace_goes_to_the_leader() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut inbound = MetadataMap::new();
        inbound.insert("traceparent", traceparent.parse().unwrap());
        inbound.insert("tracestate", "vendor=opaque".parse().unwrap());
        let request = outgoing(&inbound, ());
        assert_eq!(request.metadata().get("traceparent").unwrap(), traceparent);
        assert_eq!(
            request.metadata().get("tracestate").unwrap(),
            "vendor=opaque"
        );
    }

    #[test]
    fn a_call_without_credentials_or_deadline_sends_neither() {
        assert!(outgoing(&MetadataMap::new(), ()).metadata().is_empty());
    }

    #[test]
    fn the_leader_s_own_unavailable_passes_unchanged() {
        let mut sent = Status::unavailable("starting: the database is still loading");
        sent.metadata_mut()
            .insert("date", "Tue, 1 Dec 2026 00:00:00 GMT".parse().unwrap());
        let answer = leader_status("http://leader:50051", sent);
        assert_eq!(answer.code(), Code::Unavailable);
        assert_eq!(answer.message(), "starting: the database is still loading");
        assert!(answer.metadata().is_empty());
    }

    #[test]
    fn a_leader_that_cannot_be_connected_to_is_named() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let failed = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        let answer = leader_status("http://leader:50051", failed);
        assert_eq!(answer.code(), Code::Unavailable);
        assert_eq!(
            answer.message(),
            "the leader `http://leader:50051` cannot be reached: connection refused; \
             this follower forwards AdminService calls to it"
        );
    }
}
