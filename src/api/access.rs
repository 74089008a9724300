//! The read side: Check, BatchCheck, ListAccess and the lookups. Each method validates,
//! takes one snapshot, asks the engine, and translates the answer.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    MAX_BATCH_CHECKS, StoreSlot, convert, loaded, page_token, pb,
    pb::access_service_server::AccessService, status::invalid,
};
use crate::{
    engine::{self, list::AccessFilter},
    model::{Catalog, PermissionId, TypeId, catalog::Target},
    store::Store,
};

/// The AccessService implementation.
#[derive(Clone)]
pub struct AccessApi {
    store: StoreSlot,
}

impl AccessApi {
    /// A service answering from the store in `store`, once it is there.
    pub fn new(store: StoreSlot) -> Self {
        Self { store }
    }

    fn store(&self) -> Result<&Arc<Store>, Status> {
        loaded(&self.store)
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let catalog = self.store()?.catalog();
        let (workspace, check) = convert::check(catalog, None, request.get_ref())?;
        let snapshot = self.store()?.current();
        let decision = engine::check(catalog, snapshot.workspace(&workspace), &check);
        Ok(Response::new(pb::CheckResponse {
            decision: Some(convert::decision_message(
                catalog, &workspace, &check, &decision,
            )),
            revision: snapshot.revision,
        }))
    }

    async fn batch_check(
        &self,
        request: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        let catalog = self.store()?.catalog();
        let checks = &request.get_ref().checks;
        if checks.len() > MAX_BATCH_CHECKS {
            return Err(invalid(
                "checks",
                format_args!(
                    "at most {MAX_BATCH_CHECKS} checks per call, got {}",
                    checks.len()
                ),
            ));
        }
        let parsed = checks
            .iter()
            .enumerate()
            .map(|(i, raw)| convert::check(catalog, Some(i), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let snapshot = self.store()?.current();
        let decisions = parsed
            .iter()
            .map(|(workspace, check)| {
                let decision = engine::check(catalog, snapshot.workspace(workspace), check);
                convert::decision_message(catalog, workspace, check, &decision)
            })
            .collect();
        Ok(Response::new(pb::BatchCheckResponse {
            decisions,
            revision: snapshot.revision,
        }))
    }

    async fn list_access(
        &self,
        request: Request<pb::ListAccessRequest>,
    ) -> Result<Response<pb::ListAccessResponse>, Status> {
        let catalog = self.store()?.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        let filter = AccessFilter {
            user: convert::optional_user_id("user_id", &raw.user_id)?,
            role: match raw.role.as_str() {
                "" => None,
                role => Some(convert::role(catalog, "role", role)?),
            },
            resource: match &raw.resource {
                None => None,
                Some(resource) => Some(convert::resource(catalog, "resource", Some(resource))?),
            },
        };
        let limit = convert::page_size("page_size", raw.page_size)?;
        let after = page_token::decode(&raw.page_token)?
            .map(|last| convert::user_id("page_token", &last))
            .transpose()?;
        let snapshot = self.store()?.current();
        let workspace = snapshot.workspace(&workspace_id).ok_or_else(|| {
            Status::not_found(format!(
                "`workspace_id`: workspace `{workspace_id}` not found"
            ))
        })?;
        if let Some(resource) = &filter.resource {
            if workspace.instance(resource).is_none() {
                return Err(Status::not_found(format!(
                    "`resource`: {} `{}` is not registered in workspace `{workspace_id}`",
                    catalog.type_name(resource.0),
                    resource.1
                )));
            }
        }
        let (rows, more) =
            engine::list::list_access(catalog, workspace, &filter, after.as_ref(), limit);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page_token::encode(last.user.as_str()),
            _ => String::new(),
        };
        let entries = rows
            .into_iter()
            .map(|row| pb::AccessEntry {
                user_id: row.user.to_string(),
                membership: convert::membership_message(row.membership).into(),
                grants: row
                    .grants
                    .into_iter()
                    .map(|g| convert::grant_message(catalog, row.user, g))
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListAccessResponse {
            entries,
            next_page_token,
            revision: snapshot.revision,
        }))
    }

    async fn lookup_resources(
        &self,
        request: Request<pb::LookupResourcesRequest>,
    ) -> Result<Response<pb::LookupResourcesResponse>, Status> {
        let catalog = self.store()?.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        let user = convert::user_id("user_id", &raw.user_id)?;
        let permission = convert::permission(catalog, "permission", &raw.permission)?;
        let ty = instance_type(catalog, permission)?;
        let limit = convert::page_size("page_size", raw.page_size)?;
        let after = page_token::decode(&raw.page_token)?
            .map(|last| convert::resource_id("page_token", &last))
            .transpose()?;
        let snapshot = self.store()?.current();
        let (ids, more) = engine::lookup::lookup_resources(
            catalog,
            snapshot.workspace(&workspace_id),
            &user,
            permission,
            after.as_ref(),
            limit,
        );
        let next_page_token = next_page_token(more, ids.last().map(|id| id.as_str()));
        let resources = ids
            .into_iter()
            .map(|id| pb::ResourceRef {
                r#type: catalog.type_name(ty).to_owned(),
                id: id.to_string(),
            })
            .collect();
        Ok(Response::new(pb::LookupResourcesResponse {
            resources,
            next_page_token,
            revision: snapshot.revision,
        }))
    }

    async fn lookup_subjects(
        &self,
        request: Request<pb::LookupSubjectsRequest>,
    ) -> Result<Response<pb::LookupSubjectsResponse>, Status> {
        let catalog = self.store()?.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        let permission = convert::permission(catalog, "permission", &raw.permission)?;
        let resource = convert::target(catalog, "", permission, raw.resource.as_ref())?;
        let limit = convert::page_size("page_size", raw.page_size)?;
        let after = page_token::decode(&raw.page_token)?
            .map(|last| convert::user_id("page_token", &last))
            .transpose()?;
        let snapshot = self.store()?.current();
        let (users, more) = engine::lookup::lookup_subjects(
            catalog,
            snapshot.workspace(&workspace_id),
            permission,
            resource.as_ref(),
            after.as_ref(),
            limit,
        );
        let next_page_token = next_page_token(more, users.last().map(|(user, _)| user.as_str()));
        let subjects = users
            .into_iter()
            .map(|(user, decision)| {
                let check = engine::Check {
                    user: user.clone(),
                    permission,
                    resource: resource.clone(),
                };
                pb::Subject {
                    user_id: user.to_string(),
                    decision: Some(convert::decision_message(
                        catalog,
                        &workspace_id,
                        &check,
                        &decision,
                    )),
                }
            })
            .collect();
        Ok(Response::new(pb::LookupSubjectsResponse {
            subjects,
            next_page_token,
            revision: snapshot.revision,
        }))
    }
}

/// The instance type a LookupResources permission names, or why it names none.
fn instance_type(catalog: &Catalog, permission: PermissionId) -> Result<TypeId, Status> {
    match catalog.permission(permission).map(|p| p.target) {
        Some(Target::Instance(ty)) => Ok(ty),
        _ => Err(invalid(
            "permission",
            format_args!(
                "`{}` names the workspace itself, not instances; use Check",
                catalog.permission_name(permission)
            ),
        )),
    }
}

/// The token of the page after one ending at `last`, or empty on the last page.
fn next_page_token(more: bool, last: Option<&str>) -> String {
    match (more, last) {
        (true, Some(last)) => page_token::encode(last),
        _ => String::new(),
    }
}
