//! The write side: each method validates its request into an engine command, hands it
//! to the store, and answers once the write is durable.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use tonic::{Request, Response, Status};

use super::{StoreSlot, convert, loaded, status};
use crate::proto::{self, admin_service_server::AdminService};
use crate::{
    engine::{
        Command,
        migrate::{self, LegacyAssignment, RejectReason, Rejection, UserChange},
    },
    model::{Catalog, Grant, ResourceId, UserId, WorkspaceId, ids::IdError},
    store::Store,
};

/// The AdminService implementation.
#[derive(Clone)]
pub struct AdminApi {
    store: StoreSlot,
}

impl AdminApi {
    /// A service writing to the store in `store`, once it is there.
    pub fn new(store: StoreSlot) -> Self {
        Self { store }
    }

    fn store(&self) -> Result<&Arc<Store>, Status> {
        loaded(&self.store)
    }

    async fn write(&self, command: Command) -> Result<Response<proto::WriteResponse>, Status> {
        let name = command.name();
        let instance_field = match command {
            Command::RegisterResource { .. } => "parent_id",
            _ => "scope.instance",
        };
        match self.store()?.write(command).await {
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
        scope: Option<&proto::Scope>,
    ) -> Result<(crate::model::WorkspaceId, crate::model::UserId, Grant), Status> {
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
    type ExportStream =
        tokio_stream::wrappers::ReceiverStream<Result<proto::ExportResponse, Status>>;

    async fn import(
        &self,
        request: Request<tonic::Streaming<proto::ImportRequest>>,
    ) -> Result<Response<proto::ImportResponse>, Status> {
        let report =
            super::transfer::import(Arc::clone(self.store()?), request.into_inner()).await?;
        tracing::info!(
            records = report.records,
            applied = report.applied,
            rejected = report.rejected_count,
            revision = report.revision,
            "import"
        );
        Ok(Response::new(report))
    }

    async fn export(
        &self,
        request: Request<proto::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let only = match request.get_ref().workspace_id.as_str() {
            "" => None,
            id => Some(convert::workspace_id("workspace_id", id)?),
        };
        Ok(Response::new(super::transfer::export(self.store()?, only)?))
    }

    async fn create_workspace(
        &self,
        request: Request<proto::CreateWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::CreateWorkspace {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            owner: convert::user_id("owner_user_id", &raw.owner_user_id)?,
            products: convert::products(self.store()?.catalog(), "products", &raw.products)?,
        })
        .await
    }

    async fn set_products(
        &self,
        request: Request<proto::SetProductsRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::SetProducts {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            products: convert::products(self.store()?.catalog(), "products", &raw.products)?,
        })
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<proto::DeleteWorkspaceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::DeleteWorkspace {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
        })
        .await
    }

    async fn set_membership(
        &self,
        request: Request<proto::SetMembershipRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
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
        request: Request<proto::RemoveMemberRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
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
        request: Request<proto::RegisterResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let raw = request.into_inner();
        let catalog = self.store()?.catalog();
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
        request: Request<proto::DeleteResourceRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let raw = request.into_inner();
        self.write(Command::DeleteResource {
            workspace: convert::workspace_id("workspace_id", &raw.workspace_id)?,
            resource: convert::resource(
                self.store()?.catalog(),
                "resource",
                raw.resource.as_ref(),
            )?,
        })
        .await
    }

    async fn grant(
        &self,
        request: Request<proto::GrantRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
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
        request: Request<proto::RevokeRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
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
        request: Request<proto::MigrateLegacyRolesRequest>,
    ) -> Result<Response<proto::MigrateLegacyRolesResponse>, Status> {
        let raw = request.into_inner();
        let catalog = self.store()?.catalog();
        let (assignments, mut rejected) = legacy_assignments(&raw.assignments);
        let (changes, refused, revision) = if raw.dry_run {
            let snapshot = self.store()?.snapshot();
            let plan = migrate::plan(catalog, |id| snapshot.workspace(id), &assignments);
            let commands = plan.workspaces.iter().flat_map(|w| &w.commands);
            (
                migrate::user_changes(commands),
                plan.rejected,
                snapshot.revision,
            )
        } else {
            self.migrate(assignments).await?
        };
        rejected.extend(
            refused
                .iter()
                .map(|r| rejection_message(r.index, &r.reason)),
        );
        rejected.sort_by_key(|r| r.index);
        tracing::info!(
            dry_run = raw.dry_run,
            users = changes.len(),
            rejected = rejected.len(),
            revision,
            "legacy roles migrated"
        );
        Ok(Response::new(proto::MigrateLegacyRolesResponse {
            changed: changes
                .iter()
                .map(|change| user_change_message(catalog, change))
                .collect(),
            rejected,
            revision,
            dry_run: raw.dry_run,
        }))
    }
}

/// How many times a migration plans and writes: a concurrent write between the snapshot
/// a plan was made on and the write can make the store refuse some of a workspace's
/// commands; that workspace is then planned again on a fresh snapshot.
const MIGRATION_ATTEMPTS: usize = 3;

/// What a migration did: the users it changed, the assignments the engine rejected, and
/// the revision after it.
type Migrated = (Vec<UserChange>, Vec<Rejection>, u64);

impl AdminApi {
    /// Plans the migration on a snapshot, checks every workspace's commands there (so a
    /// workspace is never refused part-way against that state), and writes them all in
    /// one durable batch. If a concurrent write made the store refuse some command, only
    /// that workspace's assignments are planned again; planning is idempotent, so the
    /// second plan holds only what is still missing. The report lists what was written.
    /// One race is not caught: a user the plan adds as a member who is made an owner
    /// between the snapshot and the write is set back to member, as the store has no
    /// conditional write.
    async fn migrate(&self, assignments: Vec<LegacyAssignment>) -> Result<Migrated, Status> {
        let catalog = self.store()?.catalog();
        let mut pending = assignments;
        let mut written = Vec::new();
        let mut rejected = Vec::new();
        let mut revision = 0;
        for attempt in 1..=MIGRATION_ATTEMPTS {
            let snapshot = self.store()?.snapshot();
            revision = revision.max(snapshot.revision);
            let plan = migrate::plan(catalog, |id| snapshot.workspace(id), &pending);
            let done: BTreeSet<usize> = plan.rejected.iter().map(|r| r.index).collect();
            rejected.extend(plan.rejected);
            let commands: Vec<Command> = plan
                .workspaces
                .into_iter()
                .flat_map(|w| w.commands)
                .collect();
            if commands.is_empty() {
                break;
            }
            let results = self
                .store()?
                .write_all(commands.clone())
                .await
                .map_err(|err| {
                    tracing::error!(%err, "legacy migration failed");
                    status::store(&err)
                })?;
            let mut refused = BTreeMap::new();
            for (command, result) in commands.into_iter().zip(results) {
                match result {
                    Ok(outcome) => {
                        revision = revision.max(outcome.revision);
                        if outcome.changed {
                            written.push(command);
                        }
                    }
                    Err(error) => {
                        refused.entry(command.workspace().clone()).or_insert(error);
                    }
                }
            }
            if refused.is_empty() {
                break;
            }
            tracing::warn!(
                attempt,
                workspaces = refused.len(),
                "legacy migration raced with other writes; planning those workspaces again"
            );
            pending.retain(|a| refused.contains_key(&a.workspace) && !done.contains(&a.index));
            if attempt == MIGRATION_ATTEMPTS {
                rejected.extend(pending.iter().filter_map(|a| {
                    refused.get(&a.workspace).map(|error| Rejection {
                        index: a.index,
                        reason: RejectReason::WorkspaceRefused {
                            workspace: a.workspace.clone(),
                            error: error.clone(),
                        },
                    })
                }));
            }
        }
        Ok((migrate::user_changes(&written), rejected, revision))
    }
}

/// Parses legacy assignments. A row with a malformed field is rejected on its own, with
/// the field named; the rest of the batch goes on.
fn legacy_assignments(
    raw: &[proto::LegacyAssignment],
) -> (Vec<LegacyAssignment>, Vec<proto::RejectedAssignment>) {
    let mut assignments = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for (index, row) in raw.iter().enumerate() {
        match legacy_assignment(index, row) {
            Ok(assignment) => assignments.push(assignment),
            Err(reason) => rejected.push(rejection_message(index, reason)),
        }
    }
    (assignments, rejected)
}

fn legacy_assignment(
    index: usize,
    raw: &proto::LegacyAssignment,
) -> Result<LegacyAssignment, String> {
    fn field<T>(name: &str, parsed: Result<T, IdError>) -> Result<T, String> {
        parsed.map_err(|e| format!("`{name}`: {e}"))
    }
    Ok(LegacyAssignment {
        index,
        workspace: field("workspace_id", WorkspaceId::parse(&raw.workspace_id))?,
        user: field("user_id", UserId::parse(&raw.user_id))?,
        legacy_role: legacy_role_name(raw.legacy_role)?,
        instance: match raw.source_id.as_str() {
            "" => None,
            id => Some(field("source_id", ResourceId::parse(id))?),
        },
    })
}

/// The name a legacy role has in the catalog's `[legacy]` table: its enum value's name
/// without the prefix, in lower case (`LEGACY_ROLE_WORKSPACE_OWNER` is `workspace_owner`).
fn legacy_role_name(raw: i32) -> Result<String, String> {
    match proto::LegacyRole::try_from(raw) {
        Ok(proto::LegacyRole::Unspecified) => Err("`legacy_role`: is not set".to_owned()),
        Ok(role) => {
            let name = role.as_str_name();
            Ok(name
                .strip_prefix("LEGACY_ROLE_")
                .unwrap_or(name)
                .to_ascii_lowercase())
        }
        Err(_) => Err(format!("`legacy_role`: unknown legacy role `{raw}`")),
    }
}

fn rejection_message(index: usize, reason: impl ToString) -> proto::RejectedAssignment {
    proto::RejectedAssignment {
        // The index of a row of a message that fits in memory fits in a u32.
        index: u32::try_from(index).unwrap_or(u32::MAX),
        reason: reason.to_string(),
    }
}

fn user_change_message(catalog: &Catalog, change: &UserChange) -> proto::MigratedUser {
    proto::MigratedUser {
        workspace_id: change.workspace.to_string(),
        user_id: change.user.to_string(),
        membership_set: change
            .membership_set
            .map_or(proto::Membership::Unspecified, convert::membership_message)
            .into(),
        grants_added: change
            .grants_added
            .iter()
            .map(|grant| convert::grant_message(catalog, &change.user, grant))
            .collect(),
    }
}
