//! The write side: each method validates its request into an engine command, hands it
//! to the store, and answers once the write is durable.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    StoreSlot, auth,
    callers::Caller,
    convert, loaded, status,
    transfer::{self, Exports},
};
use crate::proto::{self, admin_service_server::AdminService};
use crate::{
    engine::Command,
    model::{Grant, UserId, WorkspaceId},
    store::{Store, StoreError},
};

/// The AdminService implementation.
#[derive(Clone)]
pub struct AdminApi {
    store: StoreSlot,
    exports: Exports,
}

impl AdminApi {
    /// A service writing to the store in `store`, once it is there.
    pub fn new(store: StoreSlot) -> Self {
        Self {
            store,
            exports: Exports::new(Exports::DEFAULT_MAX, Exports::DEFAULT_STALL_TIMEOUT),
        }
    }

    /// The same service, running exports within `exports`.
    pub fn with_exports(self, exports: Exports) -> Self {
        Self { exports, ..self }
    }

    fn store(&self) -> Result<&Arc<Store>, Status> {
        loaded(&self.store)
    }

    async fn write(
        &self,
        caller: Option<&Caller>,
        command: Command,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        auth::may_use(caller, "workspace_id", command.workspace().as_str())?;
        let name = command.name();
        let instance_field = match command {
            Command::RegisterResource { .. } => "parent_id",
            _ => "scope.instance",
        };
        let by = caller.map(|c| Arc::from(c.name.as_str()));
        match self.store()?.write_as(by, command).await {
            Ok(Ok(outcome)) => {
                tracing::debug!(
                    command = name,
                    revision = outcome.revision,
                    changed = outcome.changed,
                    "write"
                );
                Ok(Response::new(proto::WriteResponse {
                    revision: outcome.revision,
                    changed: outcome.changed,
                }))
            }
            Ok(Err(refused)) => Err(status::refused_naming(&refused, instance_field)),
            // The writer and the health service say once that writes are refused;
            // each write refused meanwhile is not news.
            Err(err @ StoreError::Refused(_)) => {
                tracing::debug!(%err, command = name, "write refused");
                Err(status::store(&err))
            }
            Err(err) => {
                tracing::error!(%err, command = name, "write failed");
                Err(status::store(&err))
            }
        }
    }

    /// The workspace, user and grant a Grant or Revoke request names.
    fn parse_grant(
        &self,
        workspace: &str,
        user: &str,
        role: &str,
        scope: Option<&proto::Scope>,
    ) -> Result<(WorkspaceId, UserId, Grant), Status> {
        let catalog = self.store()?.catalog();
        Ok((
            convert::workspace_id("workspace_id", workspace)?,
            convert::user_id("user_id", user)?,
            Grant {
                role: convert::role(catalog, "role", role)?,
                scope: convert::scope(catalog, "scope", scope)?,
            },
        ))
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type ImportStream =
        tokio_stream::wrappers::ReceiverStream<Result<proto::ImportProgress, Status>>;
    type ExportStream =
        tokio_stream::wrappers::ReceiverStream<Result<proto::ExportResponse, Status>>;

    async fn import(
        &self,
        request: Request<tonic::Streaming<proto::ImportRequest>>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        let caller = auth::caller_of(&request);
        auth::unbound(caller.as_deref(), "an import")?;
        let name = caller.map(|c| Arc::from(c.name.as_str()));
        let store = Arc::clone(self.store()?);
        Ok(Response::new(transfer::import(
            store,
            name,
            request.into_inner(),
        )))
    }

    async fn export(
        &self,
        request: Request<proto::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let caller = auth::caller_of(&request);
        let only = match request.get_ref().workspace_id.as_str() {
            "" => {
                auth::unbound(caller.as_deref(), "an export of every workspace")?;
                None
            }
            id => {
                auth::may_use(caller.as_deref(), "workspace_id", id)?;
                Some(convert::workspace_id("workspace_id", id)?)
            }
        };
        Ok(Response::new(self.exports.export(self.store()?, only)?))
    }

    async fn create_workspace(
        &self,
        request: Request<proto::CreateWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::CreateWorkspace {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                owner: convert::user_id("owner_user_id", &raw.owner_user_id)?,
                products: convert::products(self.store()?.catalog(), "products", &raw.products)?,
            },
        )
        .await
    }

    async fn set_products(
        &self,
        request: Request<proto::SetProductsRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::SetProducts {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                products: convert::products(self.store()?.catalog(), "products", &raw.products)?,
            },
        )
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<proto::DeleteWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::DeleteWorkspace {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            },
        )
        .await
    }

    async fn set_membership(
        &self,
        request: Request<proto::SetMembershipRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::SetMembership {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                user: convert::user_id("user_id", &raw.user_id)?,
                membership: convert::membership("membership", raw.membership)?,
                actor: {
                    auth::may_name_actor(caller.as_deref(), &raw.actor_user_id)?;
                    convert::optional_user_id("actor_user_id", &raw.actor_user_id)?
                },
            },
        )
        .await
    }

    async fn remove_member(
        &self,
        request: Request<proto::RemoveMemberRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::RemoveMember {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                user: convert::user_id("user_id", &raw.user_id)?,
                actor: {
                    auth::may_name_actor(caller.as_deref(), &raw.actor_user_id)?;
                    convert::optional_user_id("actor_user_id", &raw.actor_user_id)?
                },
            },
        )
        .await
    }

    async fn register_resource(
        &self,
        request: Request<proto::RegisterResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        let catalog = self.store()?.catalog();
        self.write(
            caller.as_deref(),
            Command::RegisterResource {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                resource: convert::resource(catalog, "resource", raw.resource.as_ref())?,
                parent: match raw.parent_id.as_str() {
                    "" => None,
                    parent => Some(convert::resource_id("parent_id", parent)?),
                },
            },
        )
        .await
    }

    async fn delete_resource(
        &self,
        request: Request<proto::DeleteResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        self.write(
            caller.as_deref(),
            Command::DeleteResource {
                workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
                resource: convert::resource(
                    self.store()?.catalog(),
                    "resource",
                    raw.resource.as_ref(),
                )?,
            },
        )
        .await
    }

    async fn grant(
        &self,
        request: Request<proto::GrantRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        let (workspace, user, grant) = self.parse_grant(
            &raw.workspace_id,
            &raw.user_id,
            &raw.role,
            raw.scope.as_ref(),
        )?;
        self.write(
            caller.as_deref(),
            Command::Grant {
                workspace,
                user,
                grant,
                actor: {
                    auth::may_name_actor(caller.as_deref(), &raw.actor_user_id)?;
                    convert::optional_user_id("actor_user_id", &raw.actor_user_id)?
                },
            },
        )
        .await
    }

    async fn revoke(
        &self,
        request: Request<proto::RevokeRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let caller = auth::caller_of(&request);
        let raw = request.into_inner();
        let (workspace, user, grant) = self.parse_grant(
            &raw.workspace_id,
            &raw.user_id,
            &raw.role,
            raw.scope.as_ref(),
        )?;
        self.write(
            caller.as_deref(),
            Command::Revoke {
                workspace,
                user,
                grant,
                actor: {
                    auth::may_name_actor(caller.as_deref(), &raw.actor_user_id)?;
                    convert::optional_user_id("actor_user_id", &raw.actor_user_id)?
                },
            },
        )
        .await
    }

    async fn migrate_legacy_roles(
        &self,
        request: Request<proto::MigrateLegacyRolesRequest>,
    ) -> Result<Response<proto::MigrateLegacyRolesResponse>, Status> {
        let caller = auth::caller_of(&request);
        auth::unbound(caller.as_deref(), "a migration")?;
        let name = caller.map(|c| Arc::from(c.name.as_str()));
        let response = super::legacy::migrate(self.store()?, name, request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
