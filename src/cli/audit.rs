//! `accessd audit`: the change log's entries with who made them, filtered, as a table
//! or JSON, following pages until `--limit` entries or the end.

use serde::Serialize;

use super::{CliError, args::AuditArgs, client, output};
use crate::proto::{self, audit_service_client::AuditServiceClient, change::Kind};

/// An entry, as printed.
#[derive(Debug, Serialize)]
struct EntryView {
    revision: u64,
    unix_millis: u64,
    command: String,
    caller: String,
    actor: String,
    changes: Vec<String>,
}

/// One change in a few words: what happened, to which workspace and whom.
fn describe(change: &proto::Change) -> String {
    let ws = &change.workspace_id;
    match &change.kind {
        Some(Kind::CreateWorkspace(p)) => format!("{ws}: created ({})", p.products.join(",")),
        Some(Kind::SetProducts(p)) => format!("{ws}: products {}", p.products.join(",")),
        Some(Kind::DeleteWorkspace(_)) => format!("{ws}: deleted"),
        Some(Kind::SetMembership(m)) => format!(
            "{ws}: {} is {}",
            m.user_id,
            if m.membership == i32::from(proto::Membership::Owner) {
                "owner"
            } else {
                "member"
            }
        ),
        Some(Kind::RemoveMember(u)) => format!("{ws}: {} removed", u.user_id),
        Some(Kind::AddGrant(g)) => format!("{ws}: {} granted {}", g.user_id, g.role),
        Some(Kind::RemoveGrant(g)) => format!("{ws}: {} revoked {}", g.user_id, g.role),
        Some(Kind::RegisterResource(r)) => format!(
            "{ws}: {} registered",
            r.resource
                .as_ref()
                .map_or_else(String::new, |r| format!("{}:{}", r.r#type, r.id))
        ),
        Some(Kind::DeleteResource(r)) => format!("{ws}: {}:{} deleted", r.r#type, r.id),
        None => format!("{ws}: ?"),
    }
}

/// Runs `accessd audit`.
pub async fn audit(args: AuditArgs) -> Result<(), CliError> {
    let token = client::bearer(&args.options.token)?;
    let mut audit =
        AuditServiceClient::with_interceptor(client::channel(&args.options.server).await?, token);
    let mut request = proto::ListChangesRequest {
        workspace_id: args.workspace.unwrap_or_default(),
        user_id: args.user.unwrap_or_default(),
        caller: args.caller.unwrap_or_default(),
        since_unix_millis: args.since_unix_ms.unwrap_or(0),
        until_unix_millis: args.until_unix_ms.unwrap_or(0),
        page_size: 1000,
        after_revision: 0,
    };
    let mut entries = Vec::new();
    while entries.len() < args.limit {
        let page = audit.list_changes(request.clone()).await?.into_inner();
        entries.extend(page.entries.into_iter().map(|e| EntryView {
            revision: e.revision,
            unix_millis: e.unix_millis,
            changes: e.changes.iter().map(describe).collect(),
            command: e.command,
            caller: e.caller,
            actor: e.actor_user_id,
        }));
        if !page.more || page.next_after_revision == request.after_revision {
            break;
        }
        request.after_revision = page.next_after_revision;
    }
    entries.truncate(args.limit);
    output::print(args.options.output, &entries, |entries| {
        let mut table = output::Table::new(&[
            "REVISION", "UNIX_MS", "COMMAND", "CALLER", "ACTOR", "CHANGES",
        ]);
        for e in entries {
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_owned()
                } else {
                    s.to_owned()
                }
            };
            table.push(vec![
                e.revision.to_string(),
                e.unix_millis.to_string(),
                e.command.clone(),
                dash(&e.caller),
                dash(&e.actor),
                e.changes.join("; "),
            ]);
        }
        table.render()
    })
}
