//! The read side: Check, BatchCheck, ListAccess and the lookups. Each method validates,
//! takes one snapshot, asks the engine, and translates the answer.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    MAX_BATCH_CHECKS, convert, page_token, pb, pb::access_service_server::AccessService,
    status::invalid,
};
use crate::{
    engine::{self, list::AccessFilter},
    store::Store,
};

/// The AccessService implementation.
#[derive(Clone)]
pub struct AccessApi {
    store: Arc<Store>,
}

impl AccessApi {
    /// A service answering from `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let catalog = self.store.catalog();
        let (workspace, check) = convert::check(catalog, "", request.get_ref())?;
        let snapshot = self.store.snapshot();
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
        let catalog = self.store.catalog();
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
            .map(|(i, raw)| convert::check(catalog, &format!("checks[{i}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let snapshot = self.store.snapshot();
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
        let catalog = self.store.catalog();
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
        let snapshot = self.store.snapshot();
        let workspace = snapshot
            .workspace(&workspace_id)
            .ok_or_else(|| Status::not_found(format!("workspace `{workspace_id}` not found")))?;
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
        _request: Request<pb::LookupResourcesRequest>,
    ) -> Result<Response<pb::LookupResourcesResponse>, Status> {
        Err(Status::unimplemented(
            "LookupResources is not implemented yet",
        ))
    }

    async fn lookup_subjects(
        &self,
        _request: Request<pb::LookupSubjectsRequest>,
    ) -> Result<Response<pb::LookupSubjectsResponse>, Status> {
        Err(Status::unimplemented(
            "LookupSubjects is not implemented yet",
        ))
    }
}
