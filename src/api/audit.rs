//! The AuditService: the change log's entries, filtered by workspace, user, caller and
//! time, a page at a time, read from the log's files as they are.

use tonic::{Request, Response, Status};

use super::{
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, StoreSlot, auth, changes::change_message, convert, loaded,
    status::invalid,
};
use crate::{
    model::{Change, UserId, WorkspaceId},
    proto::{self, audit_service_server::AuditService},
    store::{FeedError, LoggedEntry},
};

/// The most entries read for one page: a filter that matches little still answers
/// within a bounded time, with `more` set for the caller to go on.
const MAX_SCANNED: usize = 10_000;

/// The AuditService implementation.
#[derive(Clone)]
pub struct AuditApi {
    store: StoreSlot,
}

impl AuditApi {
    /// A service reading the change log of the store in `store`, once it is there.
    pub fn new(store: StoreSlot) -> Self {
        Self { store }
    }
}

/// What a request asks for.
struct Filter {
    workspace: Option<WorkspaceId>,
    user: Option<UserId>,
    caller: Option<String>,
    since: u64,
    until: u64,
}

impl Filter {
    /// The entry as the filter keeps it: its changes to the workspace asked for, if
    /// it matches at all.
    fn keep(&self, mut entry: LoggedEntry) -> Option<LoggedEntry> {
        if entry.unix_millis < self.since || (self.until > 0 && entry.unix_millis >= self.until) {
            return None;
        }
        if self
            .caller
            .as_ref()
            .is_some_and(|caller| entry.caller.as_ref() != Some(caller))
        {
            return None;
        }
        if let Some(workspace) = &self.workspace {
            entry
                .changes
                .retain(|change| change.workspace() == workspace);
            if entry.changes.is_empty() {
                return None;
            }
        }
        if let Some(user) = &self.user {
            let named = entry.actor.as_deref() == Some(user.as_str())
                || entry
                    .changes
                    .iter()
                    .any(|change| changes_user(change, user));
            if !named {
                return None;
            }
        }
        Some(entry)
    }
}

/// Whether `change` is to `user`'s membership or grants.
fn changes_user(change: &Change, user: &UserId) -> bool {
    match change {
        Change::SetMembership { user: u, .. }
        | Change::RemoveMember { user: u, .. }
        | Change::AddGrant { user: u, .. }
        | Change::RemoveGrant { user: u, .. } => u == user,
        _ => false,
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_changes(
        &self,
        request: Request<proto::ListChangesRequest>,
    ) -> Result<Response<proto::ListChangesResponse>, Status> {
        let store = std::sync::Arc::clone(loaded(&self.store)?);
        // A caller bound to workspaces reads the trail of one of them only.
        let caller = auth::caller_of(&request);
        match request.get_ref().workspace_id.as_str() {
            "" => auth::unbound(caller.as_deref(), "the trail of every workspace")?,
            id => auth::may_use(caller.as_deref(), "workspace_id", id)?,
        }
        let raw = request.into_inner();
        let page_size = match raw.page_size as usize {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(invalid(
                    "page_size",
                    format_args!("at most {MAX_PAGE_SIZE}, got {n}"),
                ));
            }
            n => n,
        };
        let filter = Filter {
            workspace: match raw.workspace_id.as_str() {
                "" => None,
                id => Some(convert::workspace_id("workspace_id", id)?),
            },
            user: convert::optional_user_id("user_id", &raw.user_id)?,
            caller: Some(raw.caller).filter(|c| !c.is_empty()),
            since: raw.since_unix_millis,
            until: raw.until_unix_millis,
        };
        let after = raw.after_revision;
        // Reading the files blocks: off the async workers.
        let read =
            tokio::task::spawn_blocking(move || store.logged_after(after, MAX_SCANNED)).await;
        let logged = match read {
            Ok(Ok(read)) => read,
            Ok(Err(FeedError::Disabled)) => {
                return Err(Status::failed_precondition(
                    "this server keeps no change log (`--change-log-mb 0`): there is no audit trail",
                ));
            }
            Ok(Err(err)) => return Err(Status::internal(err.to_string())),
            Err(_) => return Err(Status::internal("reading the change log failed")),
        };
        let catalog = loaded(&self.store)?.catalog();
        let mut page = Vec::new();
        let mut next = after;
        let mut full = false;
        for entry in logged.entries {
            if page.len() == page_size {
                full = true;
                break;
            }
            next = entry.revision;
            if let Some(kept) = filter.keep(entry) {
                page.push(proto::ChangeEntry {
                    revision: kept.revision,
                    unix_millis: kept.unix_millis,
                    command: kept.command,
                    changes: kept
                        .changes
                        .iter()
                        .map(|change| change_message(catalog, change))
                        .collect(),
                    caller: kept.caller.unwrap_or_default(),
                    actor_user_id: kept.actor.unwrap_or_default(),
                });
            }
        }
        Ok(Response::new(proto::ListChangesResponse {
            entries: page,
            next_after_revision: next,
            oldest_revision: logged.oldest_revision,
            more: logged.more || full,
            oldest_unix_millis: logged.oldest_unix_millis,
        }))
    }
}
