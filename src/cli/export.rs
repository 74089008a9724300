//! `accessd export`: every user of a workspace with their membership and grants, as the
//! CSV or JSON file a workspace owner downloads (fetched whole before anything is
//! written); or the records of the whole database or one workspace, streamed as the
//! JSON lines `accessd import` reads.

use std::io::{BufWriter, Write};

use super::{
    CliError,
    args::{ExportArgs, ExportFormat},
    client,
    list::team_table,
    output::{self, EntryView, ScopeView},
    records::RecordLine,
};
use crate::proto;

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
    let format = args.format.unwrap_or(match args.workspace {
        Some(_) => ExportFormat::Csv,
        None => ExportFormat::Records,
    });
    let bytes = match (format, args.workspace.clone()) {
        (ExportFormat::Records, workspace) => return export_records(&args, workspace).await,
        (_, None) => {
            return Err(CliError::Input(
                "`--workspace` is required for the csv and json team tables".to_owned(),
            ));
        }
        (format, Some(workspace)) => {
            let mut access = client::access(&args.server, &args.token).await?;
            let request = proto::ListAccessRequest {
                workspace_id: workspace,
                page_size: args.page.page_size,
                ..Default::default()
            };
            let entries = team_table(&mut access, request).await?;
            match format {
                ExportFormat::Json => output::json_text(&entries)?.into_bytes(),
                _ => csv_text(&entries)?,
            }
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| CliError::file(path, format_args!("cannot write: {e}"))),
        None => output::print_text(&String::from_utf8_lossy(&bytes)),
    }
}

/// Why writing the records stopped.
enum Stopped {
    /// The server failed the call.
    Call(CliError),
    /// The file or standard output could not be written.
    Write(std::io::Error),
}

/// Writes every record of `stream` to `sink`, one JSON line each.
async fn write_records(
    mut stream: tonic::Streaming<proto::ExportResponse>,
    mut sink: impl Write,
) -> Result<(), Stopped> {
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|status| Stopped::Call(status.into()))?
    {
        for record in chunk.records {
            let line =
                RecordLine::from_record(record).map_err(|e| Stopped::Call(CliError::Input(e)))?;
            serde_json::to_writer(&mut sink, &line).map_err(|e| Stopped::Write(e.into()))?;
            sink.write_all(b"\n").map_err(Stopped::Write)?;
        }
    }
    sink.flush().map_err(Stopped::Write)
}

/// Streams the records of the whole database (or one workspace), one JSON line each,
/// read at one revision by the Export RPC. A file is written under a temporary name and
/// renamed when complete, so a failure leaves no half-written file (nor the temporary).
async fn export_records(args: &ExportArgs, workspace: Option<String>) -> Result<(), CliError> {
    let mut admin = client::admin(&args.server, &args.token).await?;
    let stream = admin
        .export(proto::ExportRequest {
            workspace_id: workspace.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let Some(out) = &args.out else {
        let stdout = BufWriter::new(std::io::stdout().lock());
        return match write_records(stream, stdout).await {
            Ok(()) => Ok(()),
            Err(Stopped::Call(e)) => Err(e),
            // A closed pipe (`accessd export ... | head`) is not an error.
            Err(Stopped::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(Stopped::Write(e)) => Err(CliError::Input(format!(
                "cannot write to standard output: {e}"
            ))),
        };
    };
    let mut name = out.clone().into_os_string();
    name.push(".partial");
    let partial = std::path::PathBuf::from(name);
    let cannot_write = |e: std::io::Error| CliError::file(out, format_args!("cannot write: {e}"));
    let mut file = BufWriter::new(std::fs::File::create(&partial).map_err(cannot_write)?);
    let written = match write_records(stream, &mut file).await {
        // On disk before it takes the final name, so that the name means a whole file.
        Ok(()) => file
            .get_ref()
            .sync_all()
            .and_then(|()| std::fs::rename(&partial, out))
            .map_err(cannot_write),
        Err(Stopped::Call(e)) => Err(e),
        Err(Stopped::Write(e)) => Err(cannot_write(e)),
    };
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
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
