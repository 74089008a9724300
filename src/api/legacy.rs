//! MigrateLegacyRoles: legacy role assignments parsed by workspace, each workspace's
//! migration written as one command (planned by the writer against its latest state, so
//! atomic under one revision), and the report rendered.

use std::collections::BTreeMap;

use tonic::Status;

use super::{convert, status};
use crate::{
    engine::{
        Command, LegacyAssignment,
        migrate::{MigrationReport, RejectReason, Rejection, UserChange},
        plan_migration,
    },
    model::{Catalog, ResourceId, UserId, WorkspaceId, ids::IdError},
    proto,
    store::Store,
};

/// Migrates (or, with `dry_run`, plans on the current state) the request's rows.
pub async fn migrate(
    store: &Store,
    caller: Option<std::sync::Arc<str>>,
    raw: proto::MigrateLegacyRolesRequest,
) -> Result<proto::MigrateLegacyRolesResponse, Status> {
    let catalog = store.catalog();
    let (by_workspace, mut rejected) = legacy_assignments(&raw.assignments);
    let (report, revision) = if raw.dry_run {
        let snapshot = store.snapshot();
        let mut report = MigrationReport::default();
        for (workspace, rows) in &by_workspace {
            let planned = plan_migration(catalog, snapshot.workspace(workspace), workspace, rows);
            report.migrated.extend(planned.report.migrated);
            report.rejected.extend(planned.report.rejected);
        }
        (report, snapshot.revision)
    } else {
        write(store, caller, by_workspace).await?
    };
    rejected.extend(
        report
            .rejected
            .iter()
            .map(|r| rejection_message(r.index, &r.reason)),
    );
    rejected.sort_by_key(|r| r.index);
    tracing::info!(
        dry_run = raw.dry_run,
        users = report.migrated.len(),
        rejected = rejected.len(),
        revision,
        "legacy roles migrated"
    );
    Ok(proto::MigrateLegacyRolesResponse {
        changed: report
            .migrated
            .iter()
            .map(|change| user_change_message(catalog, change))
            .collect(),
        rejected,
        revision,
        dry_run: raw.dry_run,
    })
}

/// Writes each workspace's migration as one command, all in one request: durable
/// together, one revision for each workspace it changes. Returns what was done and the
/// revision after it.
async fn write(
    store: &Store,
    caller: Option<std::sync::Arc<str>>,
    by_workspace: BTreeMap<WorkspaceId, Vec<LegacyAssignment>>,
) -> Result<(MigrationReport, u64), Status> {
    let mut report = MigrationReport::default();
    let mut revision = store.snapshot().revision;
    let rows: Vec<(WorkspaceId, Vec<usize>)> = by_workspace
        .iter()
        .map(|(workspace, rows)| (workspace.clone(), rows.iter().map(|r| r.index).collect()))
        .collect();
    let commands: Vec<Command> = by_workspace
        .into_iter()
        .map(|(workspace, assignments)| Command::MigrateLegacyRoles {
            workspace,
            assignments,
        })
        .collect();
    if commands.is_empty() {
        return Ok((report, revision));
    }
    let outcomes = store.write_all_as(caller, commands).await.map_err(|err| {
        tracing::error!(%err, "legacy migration failed");
        status::store(&err)
    })?;
    for ((workspace, indexes), outcome) in rows.into_iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => {
                revision = revision.max(outcome.revision);
                if let Some(done) = outcome.migration {
                    report.migrated.extend(done.migrated);
                    report.rejected.extend(done.rejected);
                }
            }
            // A migration is planned into rejections, not refused; should one be, its
            // rows say why.
            Err(error) => report
                .rejected
                .extend(indexes.into_iter().map(|index| Rejection {
                    index,
                    reason: RejectReason::WorkspaceRefused {
                        workspace: workspace.clone(),
                        error: error.clone(),
                    },
                })),
        }
    }
    Ok((report, revision))
}

/// Parses legacy assignments, by workspace. A row with a malformed field is rejected on
/// its own, with the field named; the rest of the batch goes on.
fn legacy_assignments(
    raw: &[proto::LegacyAssignment],
) -> (
    BTreeMap<WorkspaceId, Vec<LegacyAssignment>>,
    Vec<proto::RejectedAssignment>,
) {
    let mut by_workspace: BTreeMap<WorkspaceId, Vec<LegacyAssignment>> = BTreeMap::new();
    let mut rejected = Vec::new();
    for (index, row) in raw.iter().enumerate() {
        match legacy_assignment(index, row) {
            Ok(assignment) => by_workspace
                .entry(assignment.workspace.clone())
                .or_default()
                .push(assignment),
            Err(reason) => rejected.push(rejection_message(index, reason)),
        }
    }
    (by_workspace, rejected)
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
