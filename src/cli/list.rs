//! `accessd list`: the team table, every page of it.

use super::{
    CliError,
    args::ListArgs,
    client::{self, AccessClient, next_page, resource_ref},
    output::{self, EntryView, Table},
};
use crate::proto;

/// Every row of the team table `request` asks for, following page tokens to the end.
/// Each page is read at its own revision: a write between pages shows in the later ones.
pub async fn team_table(
    access: &mut AccessClient,
    mut request: proto::ListAccessRequest,
) -> Result<Vec<EntryView>, CliError> {
    let mut entries = Vec::new();
    loop {
        let page = access.list_access(request.clone()).await?.into_inner();
        entries.extend(page.entries.iter().map(EntryView::from));
        match next_page(&request.page_token, page.next_page_token)? {
            Some(token) => request.page_token = token,
            None => return Ok(entries),
        }
    }
}

/// The team table as text: one row per grant, and one for a user without grants.
pub fn render(entries: &[EntryView]) -> String {
    let mut table = Table::new(&["USER", "MEMBERSHIP", "ROLE", "SCOPE"]);
    for entry in entries {
        if entry.grants.is_empty() {
            table.push(vec![
                entry.user_id.clone(),
                entry.membership.to_owned(),
                String::new(),
                String::new(),
            ]);
        }
        for grant in &entry.grants {
            table.push(vec![
                entry.user_id.clone(),
                entry.membership.to_owned(),
                grant.role.clone(),
                grant.scope.to_string(),
            ]);
        }
    }
    table.render()
}

/// Runs `accessd list`.
pub async fn list(args: ListArgs) -> Result<(), CliError> {
    let mut access = client::access(&args.options.server, &args.options.token).await?;
    let request = proto::ListAccessRequest {
        workspace_id: args.workspace,
        user_id: args.user.unwrap_or_default(),
        role: args.role.unwrap_or_default(),
        resource: args.resource.as_ref().map(resource_ref),
        page_size: args.page.page_size,
        page_token: String::new(),
        at_least_revision: args.options.at_least_revision,
    };
    let entries = team_table(&mut access, request).await?;
    output::print(args.options.output, &entries, |e| render(e))
}
