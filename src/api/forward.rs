//! AdminService on a follower: every call goes on to the leader, carrying only the
//! caller's credentials and deadline, and is answered with the leader's response. It
//! checks nothing itself: the leader authenticates, validates and writes.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::sync::oneshot;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{
    Code, Request, Response, Status, Streaming, metadata::MetadataMap, transport::Channel,
};

use super::deadline;
use crate::proto::{
    self, admin_service_client::AdminServiceClient, admin_service_server::AdminService,
};

/// The header holding the caller's credentials, which only the leader checks.
const AUTHORIZATION: &str = "authorization";

/// The AdminService of a follower: a proxy of the leader's.
#[derive(Clone)]
pub struct LeaderForward {
    leader: Channel,
    /// The leader's URL, named in the status of a call that could not reach it.
    address: String,
}

impl LeaderForward {
    /// A service forwarding every call over `leader`, the channel to `address`.
    pub fn new(leader: Channel, address: String) -> Self {
        Self { leader, address }
    }

    fn client(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.leader.clone())
    }

    /// Forwards a unary call: `call` sends the outgoing request with the client it is given.
    async fn unary<M, R, F>(
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

/// The request to send the leader: `message` with the caller's credentials and deadline
/// and nothing else, since the other headers describe this hop, not the call.
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
    request
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
    tracing::warn!(leader = address, %status, "the call to the leader failed");
    let cause = status.message();
    let message = match status.code() {
        Code::Unavailable => format!(
            "the leader `{address}` cannot be reached: {cause}; \
             this follower forwards AdminService calls to it"
        ),
        _ => format!("the call to the leader `{address}` failed: {cause}"),
    };
    Status::new(status.code(), message)
}

/// The records of an import as the leader receives them: the caller's, until its stream
/// ends or fails. A failure is sent on `failed` and the stream then never ends, so that
/// the leader cannot take a broken import for a complete one: the call is abandoned
/// instead, which resets the leader's stream.
struct UntilFailure {
    inbound: Streaming<proto::ImportRequest>,
    /// Where the first failure goes; `None` once it has gone.
    failed: Option<oneshot::Sender<Status>>,
}

impl Stream for UntilFailure {
    type Item = proto::ImportRequest;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed.is_none() {
            // Nothing wakes this again: the call is being dropped, and this stream with it.
            return Poll::Pending;
        }
        match ready!(Pin::new(&mut self.inbound).poll_next(cx)) {
            Some(Ok(chunk)) => Poll::Ready(Some(chunk)),
            Some(Err(status)) => {
                if let Some(failed) = self.failed.take() {
                    // No receiver means the leader has answered already, and that answer stands.
                    let _ = failed.send(status);
                }
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }
}

#[tonic::async_trait]
impl AdminService for LeaderForward {
    type ExportStream =
        Pin<Box<dyn Stream<Item = Result<proto::ExportResponse, Status>> + Send + 'static>>;

    async fn import(
        &self,
        request: Request<Streaming<proto::ImportRequest>>,
    ) -> Result<Response<proto::ImportResponse>, Status> {
        tracing::debug!(method = "Import", "forwarding to the leader");
        let (metadata, _, inbound) = request.into_parts();
        let (failed, failure) = oneshot::channel();
        let records = UntilFailure {
            inbound,
            failed: Some(failed),
        };
        let mut leader = self.client();
        tokio::select! {
            biased;
            answer = leader.import(outgoing(&metadata, records)) => answer
                .map(|response| Response::new(response.into_inner()))
                .map_err(|status| leader_status(&self.address, status)),
            Ok(status) = failure => Err(status),
        }
    }

    async fn export(
        &self,
        request: Request<proto::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let chunks = self
            .unary("Export", request, |mut leader, request| async move {
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
        self.unary(
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
        self.unary("SetProducts", request, |mut leader, request| async move {
            leader.set_products(request).await
        })
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<proto::DeleteWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.unary(
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
        self.unary("SetMembership", request, |mut leader, request| async move {
            leader.set_membership(request).await
        })
        .await
    }

    async fn remove_member(
        &self,
        request: Request<proto::RemoveMemberRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.unary("RemoveMember", request, |mut leader, request| async move {
            leader.remove_member(request).await
        })
        .await
    }

    async fn register_resource(
        &self,
        request: Request<proto::RegisterResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.unary(
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
        self.unary(
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
        self.unary("Grant", request, |mut leader, request| async move {
            leader.grant(request).await
        })
        .await
    }

    async fn revoke(
        &self,
        request: Request<proto::RevokeRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.unary("Revoke", request, |mut leader, request| async move {
            leader.revoke(request).await
        })
        .await
    }

    async fn migrate_legacy_roles(
        &self,
        request: Request<proto::MigrateLegacyRolesRequest>,
    ) -> Result<Response<proto::MigrateLegacyRolesResponse>, Status> {
        self.unary(
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
        assert!(
            answer
                .message()
                .starts_with("the leader `http://leader:50051` cannot be reached: "),
            "{}",
            answer.message()
        );
    }
}
