//! What each call of the soak sends and what its answer must be. Churning writes touch
//! only what the data set's checks never ask about (members kept aside, new members and
//! destinations with names of this run), and each is undone by the next call of the same
//! caller, so the data stays the same size and every check keeps its expected answer.

use std::collections::BTreeSet;

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use tonic::{Code, transport::Channel};

use super::lanes::{Answer, LaneKind};
use crate::{
    catalog::{DESTINATION, SOURCE, SOURCE_READ},
    dataset::{Dataset, WorkspaceSpec},
    load::{IMPORT_CHUNK, LoadMethod, load},
    mix::{self, BatchCase, CheckCase},
};

/// What every caller draws its requests from.
#[derive(Debug)]
pub struct Context {
    /// The data set loaded before the soak.
    pub data: Dataset,
    /// Checks with their expected answers, cycled through.
    pub cases: Vec<CheckCase>,
    /// BatchChecks with their expected answers, cycled through.
    pub batches: Vec<BatchCase>,
    /// Grants to members kept aside, none held at the start.
    pub grants: Vec<proto::GrantRequest>,
    /// Tells this run's churned members and destinations from those of any other.
    pub nonce: u64,
    /// Workspaces whose records each Import sends again.
    pub import_workspaces: usize,
    /// Records of the data set: the least an Export holds.
    pub records: u64,
}

/// One caller's clients, over its connection.
#[derive(Debug)]
pub struct Clients {
    /// AccessService.
    pub access: AccessServiceClient<Channel>,
    /// AdminService.
    pub admin: AdminServiceClient<Channel>,
    /// The connection itself, for Import.
    pub channel: Channel,
}

/// Which of a lane's callers makes a call: callers take turns through what they draw,
/// so no two of them ever churn the same grant, member or destination.
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    /// This caller.
    pub worker: usize,
    /// The lane's callers.
    pub workers: usize,
}

impl Turn {
    /// The index of this caller's `n`th draw among all the lane's draws.
    fn nth(self, n: usize) -> usize {
        self.worker + self.workers * n
    }
}

/// The permission the lookups ask about.
const SOURCE_READ_PERMISSION: &str = "source.read";
/// Names a churning caller cycles through, per caller: few, so the keys stay few.
const CHURNED_NAMES: usize = 64;
/// Rows per page of the lists and lookups: more than any workspace of the data set holds.
const PAGE: u32 = 1000;

/// Makes the `n`th call of a caller of `lane`; returns which of the lane's calls it was
/// (the index into [`LaneKind::calls`]) and how it came out.
pub async fn call(
    lane: LaneKind,
    context: &Context,
    clients: &mut Clients,
    turn: Turn,
    n: usize,
) -> (usize, Answer) {
    let workspace = pick(&context.data.workspaces, turn.nth(n));
    let half = n / 2;
    let which = n % 2;
    match (lane, workspace) {
        (_, None) => (0, Answer::Failed("the data set has no workspace".into())),
        (LaneKind::Check, _) => {
            let start = turn.worker * context.cases.len() / turn.workers.max(1);
            (0, check(clients, pick(&context.cases, start + n)).await)
        }
        (LaneKind::Batch, _) => (0, batch(clients, pick(&context.batches, turn.nth(n))).await),
        (LaneKind::ListAccess, Some(ws)) => (0, list_access(clients, ws, half, which == 0).await),
        (LaneKind::LookupResources, Some(ws)) => (0, lookup_resources(clients, ws, n).await),
        (LaneKind::LookupSubjects, Some(ws)) => (0, lookup_subjects(clients, ws, n).await),
        (LaneKind::GrantChurn, _) => (which, grant_churn(context, clients, turn, n).await),
        (LaneKind::MembershipChurn, _) => {
            let ws = pick(&context.data.workspaces, turn.nth(half));
            let user = churned(context, "usr", turn, half);
            (which, membership_churn(clients, ws, user, which == 0).await)
        }
        (LaneKind::ResourceChurn, _) => {
            let ws = pick(&context.data.workspaces, turn.nth(half));
            let id = churned(context, "dst", turn, half);
            (which, resource_churn(clients, ws, id, which == 0).await)
        }
        (LaneKind::Import, _) => (0, import(context, clients, turn.nth(n)).await),
        (LaneKind::Export, _) => (0, export(context, clients).await),
        (LaneKind::Invalid, Some(ws)) => (which, invalid(clients, ws, which == 0).await),
    }
}

/// The item at `index`, cycling.
fn pick<T>(items: &[T], index: usize) -> Option<&T> {
    items.get(index.checked_rem(items.len())?)
}

/// A name of this run for a churned member or destination.
fn churned(context: &Context, prefix: &str, turn: Turn, half: usize) -> String {
    format!(
        "{prefix}_soak{:x}_{}_{}",
        context.nonce,
        turn.worker,
        half % CHURNED_NAMES
    )
}

fn failed(status: &tonic::Status) -> Answer {
    Answer::Failed(format!("{:?}: {}", status.code(), status.message()))
}

/// A write that must change something.
fn changed(
    what: &str,
    answer: Result<tonic::Response<proto::WriteResponse>, tonic::Status>,
) -> Answer {
    match answer {
        Ok(response) if response.get_ref().changed => Answer::Ok(1),
        Ok(_) => Answer::Wrong(format!("{what}: answered changed = false")),
        Err(status) => failed(&status),
    }
}

/// A request that must be refused with `code`.
fn refused<T>(what: &str, code: Code, answer: Result<T, tonic::Status>) -> Answer {
    match answer {
        Err(status) if status.code() == code => Answer::Refused,
        Err(status) => Answer::Wrong(format!(
            "{what}: refused with {:?} ({}) rather than {code:?}",
            status.code(),
            status.message()
        )),
        Ok(_) => Answer::Wrong(format!(
            "{what}: answered rather than refused with {code:?}"
        )),
    }
}

async fn check(clients: &mut Clients, case: Option<&CheckCase>) -> Answer {
    let Some(case) = case else {
        return Answer::Failed("no check to send".into());
    };
    match clients.access.check(case.request.clone()).await {
        Ok(response) => {
            let allowed = response.get_ref().decision.as_ref().map(|d| d.allowed);
            if allowed == Some(case.allowed) {
                Answer::Ok(1)
            } else {
                Answer::Wrong(format!(
                    "{:?}: expected allowed = {}, got {allowed:?}",
                    case.request, case.allowed
                ))
            }
        }
        Err(status) => failed(&status),
    }
}

async fn batch(clients: &mut Clients, batch: Option<&BatchCase>) -> Answer {
    let Some(batch) = batch else {
        return Answer::Failed("no batch to send".into());
    };
    match clients.access.batch_check(batch.request.clone()).await {
        Ok(response) => {
            let got: Vec<bool> = response
                .get_ref()
                .decisions
                .iter()
                .map(|d| d.allowed)
                .collect();
            match got.iter().zip(&batch.allowed).position(|(a, b)| a != b) {
                None if got.len() == batch.allowed.len() => {
                    Answer::Ok(u64::try_from(got.len()).unwrap_or(u64::MAX))
                }
                None => Answer::Wrong(format!(
                    "BatchCheck of {} checks got {} decisions",
                    batch.allowed.len(),
                    got.len()
                )),
                Some(at) => Answer::Wrong(format!(
                    "BatchCheck item {at} ({:?}): expected allowed = {:?}",
                    batch.request.checks.get(at),
                    batch.allowed.get(at)
                )),
            }
        }
        Err(status) => failed(&status),
    }
}

/// One member's row (which must be theirs alone), or the workspace's first page (which
/// holds its owners at least).
async fn list_access(clients: &mut Clients, ws: &WorkspaceSpec, n: usize, one: bool) -> Answer {
    let user = if one { pick(&ws.members, n) } else { None };
    let request = proto::ListAccessRequest {
        workspace_id: ws.id.clone(),
        user_id: user.map(|m| m.id.clone()).unwrap_or_default(),
        page_size: PAGE,
        ..Default::default()
    };
    let response = match clients.access.list_access(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    let rows = u64::try_from(response.entries.len()).unwrap_or(u64::MAX);
    let users: Vec<&str> = response
        .entries
        .iter()
        .map(|e| e.user_id.as_str())
        .collect();
    match user {
        Some(member) if users != [member.id.as_str()] => Answer::Wrong(format!(
            "ListAccess of `{}` in `{}` listed {users:?}",
            member.id, ws.id
        )),
        None if ws.owners.iter().any(|o| !users.contains(&o.as_str())) => Answer::Wrong(format!(
            "ListAccess of `{}` left out an owner of {:?}",
            ws.id, ws.owners
        )),
        _ => Answer::Ok(rows),
    }
}

/// The sources a member may read, which must be exactly those the data set gives them
/// (sources are never churned).
async fn lookup_resources(clients: &mut Clients, ws: &WorkspaceSpec, n: usize) -> Answer {
    let Some(member_index) = n.checked_rem(ws.members.len()) else {
        return Answer::Failed(format!("workspace `{}` has no member", ws.id));
    };
    let user = ws
        .members
        .get(member_index)
        .map(|m| m.id.clone())
        .unwrap_or_default();
    let request = proto::LookupResourcesRequest {
        workspace_id: ws.id.clone(),
        user_id: user.clone(),
        permission: SOURCE_READ_PERMISSION.to_owned(),
        page_size: PAGE,
        ..Default::default()
    };
    let response = match clients.access.lookup_resources(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    let expected: BTreeSet<&str> = ws
        .sources()
        .iter()
        .enumerate()
        .filter(|(i, _)| mix::member_holds(ws, member_index, SOURCE_READ_PERMISSION, SOURCE, *i))
        .map(|(_, id)| id.as_str())
        .collect();
    let got: BTreeSet<&str> = response
        .resources
        .iter()
        .filter(|r| r.r#type == SOURCE)
        .map(|r| r.id.as_str())
        .collect();
    if got == expected && got.len() == response.resources.len() {
        Answer::Ok(u64::try_from(got.len()).unwrap_or(u64::MAX))
    } else {
        Answer::Wrong(format!(
            "LookupResources of `{user}` `{SOURCE_READ_PERMISSION}` in `{}`: expected {} \
             sources, got {} resources",
            ws.id,
            expected.len(),
            response.resources.len()
        ))
    }
}

/// Who may read a source: its owners at least.
async fn lookup_subjects(clients: &mut Clients, ws: &WorkspaceSpec, n: usize) -> Answer {
    let Some(source) = pick(ws.sources(), n) else {
        return Answer::Failed(format!("workspace `{}` has no source", ws.id));
    };
    let request = proto::LookupSubjectsRequest {
        workspace_id: ws.id.clone(),
        permission: SOURCE_READ_PERMISSION.to_owned(),
        resource: Some(proto::ResourceRef {
            r#type: SOURCE.to_owned(),
            id: source.clone(),
        }),
        page_size: PAGE,
        ..Default::default()
    };
    let response = match clients.access.lookup_subjects(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    let users: BTreeSet<&str> = response
        .subjects
        .iter()
        .map(|s| s.user_id.as_str())
        .collect();
    if ws.owners.iter().all(|o| users.contains(o.as_str())) {
        Answer::Ok(u64::try_from(users.len()).unwrap_or(u64::MAX))
    } else {
        Answer::Wrong(format!(
            "LookupSubjects of `{source}` in `{}` left out an owner of {:?}",
            ws.id, ws.owners
        ))
    }
}

/// Even calls grant, odd calls revoke the same grant: each caller has grants of its own.
async fn grant_churn(context: &Context, clients: &mut Clients, turn: Turn, n: usize) -> Answer {
    let own = context.grants.len() / turn.workers.max(1);
    let grant = (n / 2)
        .checked_rem(own)
        .and_then(|k| context.grants.get(turn.nth(k)));
    let Some(grant) = grant else {
        return Answer::Failed("fewer grants to churn than callers".into());
    };
    if n % 2 == 0 {
        changed("Grant", clients.admin.grant(grant.clone()).await)
    } else {
        let revoke = proto::RevokeRequest {
            workspace_id: grant.workspace_id.clone(),
            user_id: grant.user_id.clone(),
            role: grant.role.clone(),
            scope: grant.scope.clone(),
            actor_user_id: String::new(),
        };
        changed("Revoke", clients.admin.revoke(revoke).await)
    }
}

async fn membership_churn(
    clients: &mut Clients,
    ws: Option<&WorkspaceSpec>,
    user: String,
    add: bool,
) -> Answer {
    let Some(ws) = ws else {
        return Answer::Failed("the data set has no workspace".into());
    };
    if add {
        let request = proto::SetMembershipRequest {
            workspace_id: ws.id.clone(),
            user_id: user,
            membership: proto::Membership::Member.into(),
            actor_user_id: String::new(),
        };
        changed("SetMembership", clients.admin.set_membership(request).await)
    } else {
        let request = proto::RemoveMemberRequest {
            workspace_id: ws.id.clone(),
            user_id: user,
            actor_user_id: String::new(),
        };
        changed("RemoveMember", clients.admin.remove_member(request).await)
    }
}

/// A destination under the workspace's first source: a child, so the parent index is
/// churned too.
async fn resource_churn(
    clients: &mut Clients,
    ws: Option<&WorkspaceSpec>,
    id: String,
    add: bool,
) -> Answer {
    let Some((ws, parent)) = ws.and_then(|ws| Some((ws, ws.sources().first()?))) else {
        return Answer::Failed("no workspace with a source".into());
    };
    let resource = Some(proto::ResourceRef {
        r#type: DESTINATION.to_owned(),
        id,
    });
    if add {
        let request = proto::RegisterResourceRequest {
            workspace_id: ws.id.clone(),
            resource,
            parent_id: parent.clone(),
        };
        changed(
            "RegisterResource",
            clients.admin.register_resource(request).await,
        )
    } else {
        let request = proto::DeleteResourceRequest {
            workspace_id: ws.id.clone(),
            resource,
        };
        changed(
            "DeleteResource",
            clients.admin.delete_resource(request).await,
        )
    }
}

/// The `k`th slice of `import_workspaces` workspaces, sent again by the same Import as
/// the load: every record must be taken.
async fn import(context: &Context, clients: &Clients, k: usize) -> Answer {
    let all = &context.data.workspaces;
    let count = context.import_workspaces.clamp(1, all.len().max(1));
    let slice = Dataset {
        seed: context.data.seed,
        workspaces: (0..count)
            .filter_map(|i| pick(all, k * count + i).cloned())
            .collect(),
        grant_pool: 0,
    };
    let method = LoadMethod::Import {
        chunk: IMPORT_CHUNK,
    };
    match load(method, std::slice::from_ref(&clients.channel), &slice).await {
        Ok(outcome) => Answer::Ok(u64::try_from(outcome.writes).unwrap_or(u64::MAX)),
        Err(problem) => Answer::Failed(problem),
    }
}

/// The whole database, read to its end: at least the data set's records.
async fn export(context: &Context, clients: &mut Clients) -> Answer {
    let mut stream = match clients.admin.export(proto::ExportRequest::default()).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    let mut records = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => records += u64::try_from(chunk.records.len()).unwrap_or(0),
            Ok(None) => break,
            Err(status) => return failed(&status),
        }
    }
    if records >= context.records {
        Answer::Ok(records)
    } else {
        Answer::Wrong(format!(
            "Export held {records} records, fewer than the data set's {}",
            context.records
        ))
    }
}

/// A Check naming a workspace id with spaces, or a Grant to a user who is not a member.
async fn invalid(clients: &mut Clients, ws: &WorkspaceSpec, malformed: bool) -> Answer {
    if malformed {
        let request = proto::CheckRequest {
            workspace_id: "not a valid id".to_owned(),
            user_id: "usr_soak".to_owned(),
            permission: SOURCE_READ_PERMISSION.to_owned(),
            resource: Some(proto::ResourceRef {
                r#type: SOURCE.to_owned(),
                id: "src_soak".to_owned(),
            }),
            at_least_revision: 0,
        };
        let answer = clients.access.check(request).await;
        refused(
            "Check of a malformed workspace id",
            Code::InvalidArgument,
            answer,
        )
    } else {
        let request = proto::GrantRequest {
            workspace_id: ws.id.clone(),
            user_id: "usr_soak_not_a_member".to_owned(),
            role: SOURCE_READ.to_owned(),
            scope: Some(proto::Scope {
                kind: Some(proto::scope::Kind::All(proto::AllInstances {})),
            }),
            actor_user_id: String::new(),
        };
        let answer = clients.admin.grant(request).await;
        refused("Grant to a non-member", Code::FailedPrecondition, answer)
    }
}
