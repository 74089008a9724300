//! The write side: each method validates its request into an engine command, hands it
//! to the store, and answers once the write is durable.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{convert, pb, pb::admin_service_server::AdminService, status};
use crate::{
    engine::Command,
    model::{Grant, Scope},
    store::Store,
};

/// The AdminService implementation.
#[derive(Clone)]
pub struct AdminApi {
    store: Arc<Store>,
}

impl AdminApi {
    /// A service writing to `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    async fn write(&self, command: Command) -> Result<Response<pb::WriteResponse>, Status> {
        let name = command.name();
        match self.store.write(command).await {
            Ok(Ok(outcome)) => {
                tracing::debug!(
                    command = name,
                    revision = outcome.revision,
                    changed = outcome.changed,
                    "write"
                );
                Ok(Response::new(pb::WriteResponse {
                    revision: outcome.revision,
                    changed: outcome.changed,
                }))
            }
            Ok(Err(refused)) => Err(status::refused(&refused)),
            Err(err) => {
                tracing::error!(%err, command = name, "write failed");
                Err(status::store(&err))
            }
        }
    }

    fn grant(
        &self,
        workspace: &str,
        user: &str,
        role: &str,
        scope: Option<&pb::Scope>,
    ) -> Result<(crate::model::WorkspaceId, crate::model::UserId, Grant), Status> {
        let catalog = self.store.catalog();
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
    async fn create_workspace(
        &self,
        request: Request<pb::CreateWorkspaceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::CreateWorkspace {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            owner: convert::user_id("owner_user_id", &raw.owner_user_id)?,
            products: convert::products(self.store.catalog(), "products", &raw.products)?,
        })
        .await
    }

    async fn set_products(
        &self,
        request: Request<pb::SetProductsRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::SetProducts {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            products: convert::products(self.store.catalog(), "products", &raw.products)?,
        })
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<pb::DeleteWorkspaceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::DeleteWorkspace {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
        })
        .await
    }

    async fn set_membership(
        &self,
        request: Request<pb::SetMembershipRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::SetMembership {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            user: convert::user_id("user_id", &raw.user_id)?,
            membership: convert::membership("membership", raw.membership)?,
            actor: convert::optional_user_id("actor_user_id", &raw.actor_user_id)?,
        })
        .await
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::RemoveMember {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            user: convert::user_id("user_id", &raw.user_id)?,
            actor: convert::optional_user_id("actor_user_id", &raw.actor_user_id)?,
        })
        .await
    }

    async fn register_resource(
        &self,
        request: Request<pb::RegisterResourceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        let catalog = self.store.catalog();
        self.write(Command::RegisterResource {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            resource: convert::resource(catalog, "resource", raw.resource.as_ref())?,
            parent: match raw.parent_id.as_str() {
                "" => None,
                parent => Some(convert::resource_id("parent_id", parent)?),
            },
        })
        .await
    }

    async fn delete_resource(
        &self,
        request: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::DeleteResource {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            resource: convert::resource(self.store.catalog(), "resource", raw.resource.as_ref())?,
        })
        .await
    }

    async fn grant(
        &self,
        request: Request<pb::GrantRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        let (workspace, user, grant) = self.grant(
            &raw.workspace_id,
            &raw.user_id,
            &raw.role,
            raw.scope.as_ref(),
        )?;
        self.write(Command::Grant {
            workspace,
            user,
            grant,
            actor: convert::optional_user_id("actor_user_id", &raw.actor_user_id)?,
        })
        .await
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let raw = request.into_inner();
        let (workspace, user, grant) = self.grant(
            &raw.workspace_id,
            &raw.user_id,
            &raw.role,
            raw.scope.as_ref(),
        )?;
        self.write(Command::Revoke {
            workspace,
            user,
            grant,
            actor: convert::optional_user_id("actor_user_id", &raw.actor_user_id)?,
        })
        .await
    }

    async fn migrate_legacy_roles(
        &self,
        _request: Request<pb::MigrateLegacyRolesRequest>,
    ) -> Result<Response<pb::MigrateLegacyRolesResponse>, Status> {
        let _ = Scope::All;
        Err(Status::unimplemented(
            "MigrateLegacyRoles is not implemented yet",
        ))
    }
}
