//! The read side: Check, BatchCheck, ListAccess and the lookups. Each method validates,
//! refuses workspaces this server does not hold, takes one snapshot at the revision asked
//! for or later, asks the engine, and translates the answer.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    MAX_BATCH_CHECKS, StoreSlot, auth,
    callers::Caller,
    convert,
    decisions::{Basis, DecisionCounts, Tally},
    loaded, page_token, revision,
    status::invalid,
};
use crate::{
    engine::{
        self,
        check::{CheckRef, UserInWorkspace},
        list::AccessFilter,
    },
    model::{
        Catalog, PermissionId, ResourceId, Selection, TypeId, Workspace, catalog::Target, ids,
    },
    proto::{self, access_service_server::AccessService},
    store::Store,
};

/// The AccessService implementation.
#[derive(Clone)]
pub struct AccessApi {
    store: StoreSlot,
    /// The workspaces this server answers for; in an `Arc` because tonic clones the
    /// service for every connection.
    held: Arc<Selection>,
    /// Where decisions are counted, when metrics are served.
    decisions: Option<Arc<DecisionCounts>>,
}

impl AccessApi {
    /// A service answering for every workspace from the store in `store`, once it is there.
    pub fn new(store: StoreSlot) -> Self {
        Self::with_selection(store, Selection::All)
    }

    /// A service answering only for the workspaces `held` names (a partial follower's),
    /// and refusing the others with FAILED_PRECONDITION.
    pub fn with_selection(store: StoreSlot, held: Selection) -> Self {
        Self {
            store,
            held: Arc::new(held),
            decisions: None,
        }
    }

    /// The same service, counting its decisions in `decisions`.
    pub fn counting(self, decisions: Arc<DecisionCounts>) -> Self {
        Self {
            decisions: Some(decisions),
            ..self
        }
    }

    fn store(&self) -> Result<&Arc<Store>, Status> {
        loaded(&self.store)
    }

    /// Refuses a workspace this server does not hold, naming the request field `field`:
    /// its data is not here, and a denial would be an answer made up.
    fn hold(&self, field: impl Fn() -> String, workspace_id: &str) -> Result<(), Status> {
        // `is_all` first: a server holding everything pays one comparison.
        if self.held.is_all() || self.held.holds(workspace_id) {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "`{}`: workspace `{workspace_id}` is not held by this server, which holds {} of \
             the leader's workspaces; ask the server holding it",
            field(),
            self.held
        )))
    }

    /// Refuses a workspace the caller may not name (before anything else, so that a
    /// refusal says nothing of whether it exists), then one this server does not hold.
    fn admit<T>(
        &self,
        request: &Request<T>,
        field: impl Fn() -> String,
        workspace_id: &str,
    ) -> Result<(), Status> {
        let caller = request.extensions().get::<Arc<Caller>>();
        if let Some(caller) = caller.filter(|c| c.workspaces.is_some()) {
            auth::may_use(Some(caller), &field(), workspace_id)?;
        }
        self.hold(field, workspace_id)
    }

    /// Refuses, before any wait, a batch naming a workspace the caller may not name or
    /// this server does not hold; items whose workspace id is malformed are left for
    /// their parsing to refuse.
    fn admit_all(&self, request: &Request<proto::BatchCheckRequest>) -> Result<(), Status> {
        let bound = request
            .extensions()
            .get::<Arc<Caller>>()
            .is_some_and(|c| c.workspaces.is_some());
        if self.held.is_all() && !bound {
            return Ok(());
        }
        for (i, check) in request.get_ref().checks.iter().enumerate() {
            if ids::validate(&check.workspace_id).is_ok() {
                self.admit(
                    request,
                    || format!("checks[{i}].workspace_id"),
                    &check.workspace_id,
                )?;
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn check(
        &self,
        request: Request<proto::CheckRequest>,
    ) -> Result<Response<proto::CheckResponse>, Status> {
        let store = self.store()?;
        let catalog = store.catalog();
        let raw = request.get_ref();
        let (workspace_id, check) = convert::check(catalog, None, raw)?;
        self.admit(&request, || "workspace_id".to_owned(), workspace_id)?;
        let snapshot = revision::at_least(store, raw.at_least_revision, request.metadata()).await?;
        let workspace = snapshot.workspaces.get(workspace_id);
        let decision = engine::check::decide(catalog, workspace, check);
        if let Some(decisions) = &self.decisions {
            decisions.add(Basis::of(decision), 1);
        }
        Ok(Response::new(proto::CheckResponse {
            decision: Some(convert::decision_message(
                catalog,
                workspace_id,
                check,
                decision,
            )),
            revision: snapshot.revision,
        }))
    }

    async fn batch_check(
        &self,
        request: Request<proto::BatchCheckRequest>,
    ) -> Result<Response<proto::BatchCheckResponse>, Status> {
        let store = self.store()?;
        let catalog = store.catalog();
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
        self.admit_all(&request)?;
        let wanted = checks
            .iter()
            .map(|check| check.at_least_revision)
            .fold(request.get_ref().at_least_revision, u64::max);
        let snapshot = revision::at_least(store, wanted, request.metadata()).await?;
        // One pass: each item is parsed, decided and rendered in turn, and the first
        // malformed item fails the call (the answers made before it are dropped).
        let mut decisions = Vec::with_capacity(checks.len());
        // A batch's items usually share their workspace, and often their user: each is
        // looked up again only when it changes from one item to the next.
        let mut last_workspace: Option<(&str, Option<&Workspace>)> = None;
        let mut user_in_workspace: Option<UserInWorkspace> = None;
        let mut tally = Tally::default();
        for (i, raw) in checks.iter().enumerate() {
            let (workspace_id, check) = convert::check(catalog, Some(i), raw)?;
            let workspace = match last_workspace {
                Some((id, workspace)) if id == workspace_id => workspace,
                _ => {
                    let workspace = snapshot.workspaces.get(workspace_id);
                    last_workspace = Some((workspace_id, workspace));
                    workspace
                }
            };
            let user = match user_in_workspace {
                Some(user) if user.is(workspace, check.user) => user,
                _ => *user_in_workspace.insert(UserInWorkspace::new(workspace, check.user)),
            };
            let decision = user.decide(catalog, check.permission, check.resource);
            tally.count(decision);
            decisions.push(convert::decision_message(
                catalog,
                workspace_id,
                check,
                decision,
            ));
        }
        if let Some(counts) = &self.decisions {
            tally.add_to(counts);
        }
        Ok(Response::new(proto::BatchCheckResponse {
            decisions,
            revision: snapshot.revision,
        }))
    }

    async fn list_access(
        &self,
        request: Request<proto::ListAccessRequest>,
    ) -> Result<Response<proto::ListAccessResponse>, Status> {
        let store = self.store()?;
        let catalog = store.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        self.admit(
            &request,
            || "workspace_id".to_owned(),
            workspace_id.as_str(),
        )?;
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
        let snapshot = revision::at_least(store, raw.at_least_revision, request.metadata()).await?;
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
            .map(|row| proto::AccessEntry {
                user_id: row.user.to_string(),
                membership: convert::membership_message(row.membership).into(),
                grants: row
                    .grants
                    .into_iter()
                    .map(|g| convert::grant_message(catalog, row.user, g))
                    .collect(),
            })
            .collect();
        Ok(Response::new(proto::ListAccessResponse {
            entries,
            next_page_token,
            revision: snapshot.revision,
        }))
    }

    async fn lookup_resources(
        &self,
        request: Request<proto::LookupResourcesRequest>,
    ) -> Result<Response<proto::LookupResourcesResponse>, Status> {
        let store = self.store()?;
        let catalog = store.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        self.admit(
            &request,
            || "workspace_id".to_owned(),
            workspace_id.as_str(),
        )?;
        let user = convert::user_id("user_id", &raw.user_id)?;
        let permission = convert::permission(catalog, "permission", &raw.permission)?;
        let ty = instance_type(catalog, permission)?;
        let limit = convert::page_size("page_size", raw.page_size)?;
        let after = page_token::decode(&raw.page_token)?
            .map(|last| convert::resource_id("page_token", &last))
            .transpose()?;
        let snapshot = revision::at_least(store, raw.at_least_revision, request.metadata()).await?;
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
            .map(|id| proto::ResourceRef {
                r#type: catalog.type_name(ty).to_owned(),
                id: id.to_string(),
            })
            .collect();
        Ok(Response::new(proto::LookupResourcesResponse {
            resources,
            next_page_token,
            revision: snapshot.revision,
        }))
    }

    async fn lookup_subjects(
        &self,
        request: Request<proto::LookupSubjectsRequest>,
    ) -> Result<Response<proto::LookupSubjectsResponse>, Status> {
        let store = self.store()?;
        let catalog = store.catalog();
        let raw = request.get_ref();
        let workspace_id = convert::workspace_id("workspace_id", &raw.workspace_id)?;
        self.admit(
            &request,
            || "workspace_id".to_owned(),
            workspace_id.as_str(),
        )?;
        let permission = convert::permission(catalog, "permission", &raw.permission)?;
        let resource = convert::target(catalog, "", permission, raw.resource.as_ref())?;
        let limit = convert::page_size("page_size", raw.page_size)?;
        let after = page_token::decode(&raw.page_token)?
            .map(|last| convert::user_id("page_token", &last))
            .transpose()?;
        let snapshot = revision::at_least(store, raw.at_least_revision, request.metadata()).await?;
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
                let check = CheckRef {
                    user: user.as_str(),
                    permission,
                    resource: resource.as_ref().map(ResourceId::as_str),
                };
                proto::Subject {
                    user_id: user.to_string(),
                    decision: Some(convert::decision_message(
                        catalog,
                        workspace_id.as_str(),
                        check,
                        decision.as_ref(),
                    )),
                }
            })
            .collect();
        Ok(Response::new(proto::LookupSubjectsResponse {
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

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::{
        engine::Command,
        model::{ProductSet, UserId, WorkspaceId},
        store::StoreConfig,
    };

    /// A store in `dir` with each workspace of `owned` (workspace, owner) created.
    async fn store_with(dir: &std::path::Path, owned: &[(&str, &str)]) -> Arc<Store> {
        let catalog = Arc::new(Catalog::built_in());
        let store = Store::open(dir, catalog, &StoreConfig::default()).unwrap();
        let create = |(workspace, owner): &(&str, &str)| Command::CreateWorkspace {
            workspace: WorkspaceId::parse(workspace).unwrap(),
            owner: UserId::parse(owner).unwrap(),
            products: ProductSet::default(),
        };
        let written = store
            .write_all(owned.iter().map(create).collect())
            .await
            .unwrap();
        assert!(written.iter().all(Result::is_ok));
        Arc::new(store)
    }

    fn check_of(workspace: &str, user: &str) -> proto::CheckRequest {
        proto::CheckRequest {
            workspace_id: workspace.to_owned(),
            user_id: user.to_owned(),
            permission: "workspace.read".to_owned(),
            resource: None,
            at_least_revision: 0,
        }
    }

    #[tokio::test]
    async fn a_batch_looks_a_user_up_again_when_the_workspace_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &[("a", "ann"), ("b", "bob")]).await;
        let api = AccessApi::new(Arc::new(OnceLock::from(Arc::clone(&store))));
        // Each item differs from the one before in its workspace, its user, or neither.
        let items = [
            ("a", "ann", true),
            ("a", "ann", true),
            ("b", "ann", false),
            ("b", "bob", true),
            ("a", "bob", false),
            ("c", "bob", false),
            ("d", "bob", false),
            ("a", "ann", true),
        ];
        let checks = items
            .iter()
            .map(|(workspace, user, _)| check_of(workspace, user))
            .collect();
        let answer = api
            .batch_check(Request::new(proto::BatchCheckRequest {
                checks,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.decisions.len(), items.len());
        for ((workspace, user, allowed), decision) in items.iter().zip(&answer.decisions) {
            assert_eq!(decision.allowed, *allowed, "{user} in {workspace}");
            let expected = if *allowed {
                format!("allowed: `{user}` owns workspace `{workspace}`")
            } else {
                format!("denied: `{user}` is not a member of workspace `{workspace}`")
            };
            assert_eq!(decision.explanation, expected);
        }
        drop(api);
        store.close();
    }

    #[tokio::test]
    async fn a_partial_server_answers_for_its_workspaces_and_refuses_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &[("acme", "ann"), ("globex", "gus")]).await;
        let api = AccessApi::with_selection(
            Arc::new(OnceLock::from(Arc::clone(&store))),
            "workspaces:acme".parse().unwrap(),
        );

        let answer = api
            .check(Request::new(check_of("acme", "ann")))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.decision.unwrap().allowed);

        // globex exists in this store, yet a server not holding it must not answer for it.
        let refused = api
            .check(Request::new(check_of("globex", "gus")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            refused.message(),
            "`workspace_id`: workspace `globex` is not held by this server, which holds \
             workspaces:acme of the leader's workspaces; ask the server holding it"
        );

        let refused = api
            .batch_check(Request::new(proto::BatchCheckRequest {
                checks: vec![check_of("acme", "ann"), check_of("globex", "gus")],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(
            refused
                .message()
                .starts_with("`checks[1].workspace_id`: workspace `globex` is not held"),
            "{}",
            refused.message()
        );

        let refused = api
            .list_access(Request::new(proto::ListAccessRequest {
                workspace_id: "initech".to_owned(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(
            refused
                .message()
                .starts_with("`workspace_id`: workspace `initech`")
        );
        drop(api);
        store.close();
    }
}
