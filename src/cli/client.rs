//! Connecting to a running server: the address, the admin token, and the generated
//! clients. One connection per command; no retries (the command is re-run instead).

use std::time::Duration;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use super::{
    CliError,
    args::{ResourceArg, ServerArgs, TokenArgs},
};
use crate::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};

/// How long to wait for the server to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An AccessService client that sends the token, if one was given.
pub type AccessClient = AccessServiceClient<InterceptedService<Channel, BearerToken>>;

/// An AdminService client that sends the admin token, if one was given.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer TOKEN` to every call, when a token was given.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// The header value for `token`; a token that is not visible ASCII is refused.
    pub fn parse(token: Option<&str>) -> Result<Self, CliError> {
        token
            .map(|token| {
                format!("Bearer {token}").parse().map_err(|_| {
                    CliError::Input("`--token`: must be visible ASCII characters".to_owned())
                })
            })
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Connects to the server named by `--addr`.
pub async fn channel(server: &ServerArgs) -> Result<Channel, CliError> {
    let addr = if server.addr.contains("://") {
        server.addr.clone()
    } else {
        format!("http://{}", server.addr)
    };
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| {
            CliError::Input(format!(
                "`--addr`: `{}` is not an address: {e}",
                server.addr
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT);
    endpoint
        .connect()
        .await
        .map_err(|e| CliError::connect(&addr, &e))
}

/// An AccessService client of the server named by `--addr`.
pub async fn access(server: &ServerArgs, token: &TokenArgs) -> Result<AccessClient, CliError> {
    let token = BearerToken::parse(token.token.as_deref())?;
    Ok(AccessServiceClient::with_interceptor(
        channel(server).await?,
        token,
    ))
}

/// An AdminService client of the server named by `--addr`, sending `--token`.
pub async fn admin(server: &ServerArgs, token: &TokenArgs) -> Result<AdminClient, CliError> {
    let token = BearerToken::parse(token.token.as_deref())?;
    Ok(AdminServiceClient::with_interceptor(
        channel(server).await?,
        token,
    ))
}

/// The message naming `resource`.
pub fn resource_ref(resource: &ResourceArg) -> proto::ResourceRef {
    proto::ResourceRef {
        r#type: resource.type_name.clone(),
        id: resource.id.clone(),
    }
}

/// The token of the next page: `None` after the last page. A server that hands back the
/// token it was given would loop forever, so that is an error.
pub fn next_page(asked: &str, next: String) -> Result<Option<String>, CliError> {
    if next.is_empty() {
        Ok(None)
    } else if next == asked {
        Err(CliError::Input(
            "the server returned the same page token twice".to_owned(),
        ))
    } else {
        Ok(Some(next))
    }
}
