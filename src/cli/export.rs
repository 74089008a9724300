//! `accessd export`: every user of a workspace with their membership and grants, as the
//! CSV or JSON file a workspace owner downloads. Fetched whole before anything is
//! written, so a failure leaves no half-written file.

use super::{
    CliError,
    args::{ExportArgs, ExportFormat},
    client,
    list::team_table,
    output::{self, EntryView, ScopeView},
};
use crate::api::pb;

/// The CSV header.
const CSV_HEADER: [&str; 5] = ["user_id", "membership", "role", "scope_type", "scope_id"];

/// The CSV file: one row per grant, and one with an empty role for a user without
/// grants. A grant on all instances has `scope_type` `all` and an empty `scope_id`.
fn csv_text(entries: &[EntryView]) -> Result<Vec<u8>, CliError> {
    let failed = |e: csv::Error| CliError::Input(format!("cannot write CSV: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).map_err(failed)?;
    for entry in entries {
        if entry.grants.is_empty() {
            writer
                .write_record([entry.user_id.as_str(), entry.membership, "", "", ""])
                .map_err(failed)?;
        }
        for grant in &entry.grants {
            let (scope_type, scope_id) = match &grant.scope {
                ScopeView::All => ("all", ""),
                ScopeView::Instance { type_name, id } => (type_name.as_str(), id.as_str()),
                ScopeView::Missing => ("", ""),
            };
            writer
                .write_record([
                    entry.user_id.as_str(),
                    entry.membership,
                    grant.role.as_str(),
                    scope_type,
                    scope_id,
                ])
                .map_err(failed)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| CliError::Input(format!("cannot write CSV: {}", e.error())))
}

/// Runs `accessd export`.
pub async fn export(args: ExportArgs) -> Result<(), CliError> {
    let mut access = client::access(&args.server).await?;
    let request = pb::ListAccessRequest {
        workspace_id: args.workspace,
        page_size: args.page.page_size,
        ..Default::default()
    };
    let entries = team_table(&mut access, request).await?;
    let bytes = match args.format {
        ExportFormat::Csv => csv_text(&entries)?,
        ExportFormat::Json => output::json_text(&entries)?.into_bytes(),
    };
    match &args.out {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| CliError::file(path, format_args!("cannot write: {e}"))),
        None => output::print_text(&String::from_utf8_lossy(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::GrantView;

    #[test]
    fn csv_has_a_row_per_grant_and_one_for_a_user_without_grants() {
        let entries = vec![
            EntryView {
                user_id: "olivia".into(),
                membership: "owner",
                grants: vec![],
            },
            EntryView {
                user_id: "sam,jr".into(),
                membership: "member",
                grants: vec![
                    GrantView {
                        role: "source_admin".into(),
                        scope: ScopeView::Instance {
                            type_name: "source".into(),
                            id: "ios:prod".into(),
                        },
                    },
                    GrantView {
                        role: "warehouse_read".into(),
                        scope: ScopeView::All,
                    },
                ],
            },
        ];
        let text = String::from_utf8(csv_text(&entries).unwrap()).unwrap();
        assert_eq!(
            text,
            "user_id,membership,role,scope_type,scope_id\n\
             olivia,owner,,,\n\
             \"sam,jr\",member,source_admin,source,ios:prod\n\
             \"sam,jr\",member,warehouse_read,all,\n"
        );
    }
}
