//! Who is calling: the credentials a call carries, checked before any handler runs, and
//! what the caller found may do once a handler knows which workspace and actor the call
//! names. A caller is identified by its token, or, for a call without one, by the client
//! certificate of its connection (mTLS). Refusals are logged at info with the peer's
//! address and the caller's name; tokens never are.

use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};
use tracing::info;

use super::{
    callers::{Caller, Callers, Scope, token_digest},
    peer::Peer,
};

/// How callers are told apart.
#[derive(Clone, Default)]
pub enum Credentials {
    /// None configured: every call is let in (a server on loopback, or `--insecure`).
    #[default]
    Open,
    /// `--admin-token`: AdminService and ReplicationService need it; AccessService is open.
    AdminToken(Arc<[u8; 32]>),
    /// `--callers FILE`: every service but health needs a caller with the scope, read
    /// from the file as it is now (it is reloaded when it changes).
    Callers(Arc<ArcSwap<Callers>>),
}

/// The check of credentials before the handlers of one service, which needs `scope`.
#[derive(Clone)]
pub struct Authenticate {
    credentials: Credentials,
    scope: Scope,
    service: &'static str,
}

impl Authenticate {
    /// Checks calls to `service`, which needs `scope`.
    pub fn new(credentials: Credentials, scope: Scope, service: &'static str) -> Self {
        Self {
            credentials,
            scope,
            service,
        }
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match &self.credentials {
            Credentials::Open => Ok(request),
            Credentials::AdminToken(_) if self.scope == Scope::Check => Ok(request),
            Credentials::AdminToken(expected) => {
                let given = bearer(&request).map(token_digest);
                if given.is_some_and(|given| bool::from(given.ct_eq(expected.as_ref()))) {
                    Ok(request)
                } else {
                    refused(&request, None, "no or a wrong admin token");
                    Err(Status::unauthenticated(format!(
                        "{} needs `authorization: Bearer <token>` with the server's admin token",
                        self.service
                    )))
                }
            }
            Credentials::Callers(callers) => {
                let callers = callers.load();
                let caller = match bearer(&request) {
                    // A token names the caller, whatever certificate the connection has:
                    // a proxy holding a certificate of its own may pass callers' tokens on.
                    Some(token) => callers.identify(token).ok_or_else(|| {
                        refused(&request, None, "an unknown token");
                        Status::unauthenticated("the token is not a caller's")
                    })?,
                    None => self.by_certificate(&request, &callers)?,
                };
                if !caller.has(self.scope) {
                    refused(&request, Some(&caller.name), "outside its scopes");
                    return Err(Status::permission_denied(format!(
                        "caller `{}` may not call {}: it needs the `{}` scope",
                        caller.name, self.service, self.scope
                    )));
                }
                request.extensions_mut().insert(Arc::new(caller.clone()));
                Ok(request)
            }
        }
    }
}

impl Authenticate {
    /// The caller the connection's client certificate identifies, for a call with no
    /// token.
    fn by_certificate<'c>(
        &self,
        request: &Request<()>,
        callers: &'c Callers,
    ) -> Result<&'c Caller, Status> {
        let Some(certificate) = request
            .extensions()
            .get::<Peer>()
            .and_then(Peer::certificate)
        else {
            refused(request, None, "no credentials");
            return Err(Status::unauthenticated(format!(
                "{} needs `authorization: Bearer <token>` of a caller, or a client \
                 certificate of one",
                self.service
            )));
        };
        match callers.identify_certificate(&certificate.names) {
            Ok(Some(caller)) => Ok(caller),
            Ok(None) => {
                info!(
                    peer = %peer(request),
                    subject = %certificate.subject,
                    "call refused: a client certificate of no caller"
                );
                Err(Status::unauthenticated(
                    "the client certificate names no caller, and the call has no token",
                ))
            }
            Err(why) => {
                info!(peer = %peer(request), subject = %certificate.subject, why, "call refused");
                Err(Status::unauthenticated(why))
            }
        }
    }
}

/// The token of `authorization: Bearer <token>`, if the call carries one.
fn bearer<T>(request: &Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn refused<T>(request: &Request<T>, caller: Option<&str>, why: &str) {
    info!(peer = %peer(request), caller = caller.unwrap_or("-"), why, "call refused");
}

/// The address of the call's peer, for logs.
fn peer<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.address().to_string())
}

/// The caller a call was let in as, when callers are configured.
pub fn caller_of<T>(request: &Request<T>) -> Option<Arc<Caller>> {
    request.extensions().get::<Arc<Caller>>().cloned()
}

/// Refuses a caller bound to other workspaces, without saying whether `workspace`
/// exists.
pub fn may_use(caller: Option<&Caller>, field: &str, workspace: &str) -> Result<(), Status> {
    match caller {
        Some(caller) if !caller.may_use(workspace) => {
            info!(caller = %caller.name, field, "call refused: a workspace outside the caller's");
            Err(Status::permission_denied(format!(
                "`{field}`: caller `{}` may not name workspace `{workspace}`",
                caller.name
            )))
        }
        _ => Ok(()),
    }
}

/// Refuses a caller bound to workspaces a call that names no single one (an export of
/// everything, an import, a migration or a change stream).
pub fn unbound(caller: Option<&Caller>, what: &str) -> Result<(), Status> {
    match caller {
        Some(caller) if caller.workspaces.is_some() => Err(Status::permission_denied(format!(
            "caller `{}` is bound to workspaces, and {what} is not",
            caller.name
        ))),
        _ => Ok(()),
    }
}

/// Refuses a caller that may not name an acting user when `actor` is set.
pub fn may_name_actor(caller: Option<&Caller>, actor: &str) -> Result<(), Status> {
    match caller {
        Some(caller) if !actor.is_empty() && !caller.may_name_actor => {
            info!(caller = %caller.name, "call refused: naming an actor");
            Err(Status::permission_denied(format!(
                "`actor_user_id`: caller `{}` may not name an acting user",
                caller.name
            )))
        }
        _ => Ok(()),
    }
}
