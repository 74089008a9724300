//! Connecting to a running server: the address, the admin token, and the generated
//! clients. One connection per command; no retries (the command is re-run instead).

use std::time::Duration;

use tonic::{service::interceptor::InterceptedService, transport::Channel};

use super::{
    CliError,
    args::{ResourceArg, ServerArgs, TokenArgs},
};
use crate::{
    connect::{self, BearerToken},
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    },
};

/// How long to wait for the server to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An AccessService client that sends the token, if one was given.
pub type AccessClient = AccessServiceClient<InterceptedService<Channel, BearerToken>>;

/// An AdminService client that sends the admin token, if one was given.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

/// The token of `--token`, sent with every call.
pub fn bearer(token: &TokenArgs) -> Result<BearerToken, CliError> {
    BearerToken::new(token.token.as_deref())
        .map_err(|_| CliError::Input("`--token`: must be visible ASCII characters".to_owned()))
}

/// Connects to the server named by `--addr`, over TLS for an `https://` address and
/// through a Unix socket for a `unix:` one.
pub async fn channel(server: &ServerArgs) -> Result<Channel, CliError> {
    let target = connect::endpoint(&server.addr, &server.tls())
        .map_err(|e| CliError::Input(format!("`--addr`: {e}")))?
        .configured(|endpoint| endpoint.connect_timeout(CONNECT_TIMEOUT));
    target
        .connect()
        .await
        .map_err(|e| CliError::connect(&connect::url(&server.addr), &e))
}

/// An AccessService client of the server named by `--addr`.
pub async fn access(server: &ServerArgs, token: &TokenArgs) -> Result<AccessClient, CliError> {
    let token = bearer(token)?;
    Ok(AccessServiceClient::with_interceptor(
        channel(server).await?,
        token,
    ))
}

/// An AdminService client of the server named by `--addr`, sending `--token`.
pub async fn admin(server: &ServerArgs, token: &TokenArgs) -> Result<AdminClient, CliError> {
    let token = bearer(token)?;
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
