//! `accessd audit`: the change log's entries with who made them, filtered, as a table
//! or JSON, following pages until `--limit` entries or the end; and, on standard error,
//! where the trail starts when the query reaches before it.

use std::time::{Duration, UNIX_EPOCH};

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

/// What to tell a person whose query reaches back to `since` (milliseconds since the
/// epoch) of a trail that starts at `oldest_revision`, made at `oldest_unix_millis`:
/// nothing if it reaches no further back than the trail, or the trail starts at
/// revision 1 and so lacks nothing.
fn trail_start_note(since: u64, oldest_revision: u64, oldest_unix_millis: u64) -> Option<String> {
    if oldest_revision <= 1 || oldest_unix_millis == 0 || since >= oldest_unix_millis {
        return None;
    }
    let made =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(oldest_unix_millis));
    Some(format!(
        "the audit trail starts at revision {oldest_revision}, made at {made} \
         ({oldest_unix_millis}): older changes are no longer kept \
         (`serve --audit-retention` keeps them longer)"
    ))
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
    let mut note = None;
    while entries.len() < args.limit {
        let page = audit.list_changes(request.clone()).await?.into_inner();
        if request.after_revision == 0 {
            note = trail_start_note(
                request.since_unix_millis,
                page.oldest_revision,
                page.oldest_unix_millis,
            );
        }
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
    // On standard error, so that the JSON on standard output stays whole.
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_says_where_the_trail_starts_only_when_the_query_reaches_before_it() {
        let made = 1_796_226_413_083;
        let note = trail_start_note(0, 42, made).unwrap();
        assert!(
            note.contains("revision 42, made at 2026-12-02T15:46:53.083Z")
                && note.contains("(1796226413083)"),
            "{note}"
        );
        assert!(trail_start_note(made - 1, 42, made).is_some());
        assert_eq!(trail_start_note(made, 42, made), None);
        // A trail from revision 1 lacks nothing; an empty one says no time.
        assert_eq!(trail_start_note(0, 1, made), None);
        assert_eq!(trail_start_note(0, 42, 0), None);
    }
}
