//! `accessd migrate-legacy`: legacy role assignments from a CSV file to
//! MigrateLegacyRoles, and its report with each rejected row's line in the file.
//! A malformed file is refused before anything is sent.

use std::{collections::HashMap, path::Path, process::ExitCode};

use prost::Message;
use serde::Serialize;

use super::{
    CliError, EXIT_DENIED,
    args::MigrateArgs,
    client,
    output::{self, GrantView, Table, membership_text},
};
use crate::proto;

/// The header the file must start with.
const HEADER: [&str; 4] = ["workspace_id", "user_id", "legacy_role", "source_id"];

/// The most assignment bytes sent in one call, below the server's 4 MiB message limit.
/// A larger file is sent in several calls, each holding whole workspaces, so every
/// workspace still migrates atomically.
const MAX_CALL_BYTES: usize = 3 * 1024 * 1024;

/// One row of the file.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// Its line number in the file (the header is line 1).
    line: u64,
    /// The `legacy_role` column as written.
    legacy_role: String,
    /// The row as a message.
    assignment: proto::LegacyAssignment,
}

/// The legacy role named in the file; an unknown one is sent as unspecified and the
/// server rejects its row.
fn legacy_role(raw: &str) -> proto::LegacyRole {
    match raw {
        "workspace_owner" => proto::LegacyRole::WorkspaceOwner,
        "workspace_read_only" => proto::LegacyRole::WorkspaceReadOnly,
        "source_collaborator" => proto::LegacyRole::SourceCollaborator,
        _ => proto::LegacyRole::Unspecified,
    }
}

/// Parses the file's rows, or says which line is malformed.
fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, CliError> {
    let at = |line: u64, problem: String| CliError::file(path, format!("line {line}: {problem}"));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| at(error_line(&e), csv_problem(&e)))?
        .clone();
    if header.iter().ne(HEADER) {
        let found = if header.is_empty() {
            "an empty file".to_owned()
        } else {
            format!("`{}`", header.iter().collect::<Vec<_>>().join(","))
        };
        return Err(at(
            1,
            format!("expected the header `{}`, found {found}", HEADER.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| at(error_line(&e), csv_problem(&e)))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
        rows.push(Row {
            line,
            legacy_role: field(2),
            assignment: proto::LegacyAssignment {
                workspace_id: field(0),
                user_id: field(1),
                legacy_role: legacy_role(&field(2)).into(),
                source_id: field(3),
            },
        });
    }
    Ok(rows)
}

fn error_line(err: &csv::Error) -> u64 {
    err.position().map_or(0, csv::Position::line)
}

fn csv_problem(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => format!(
            "expected {} fields (`{}`), found {len}",
            HEADER.len(),
            HEADER.join(",")
        ),
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 text: {err}"),
        csv::ErrorKind::Io(err) => err.to_string(),
        _ => err.to_string(),
    }
}

/// The rows grouped into calls: each call holds whole workspaces and, unless one
/// workspace alone is larger, at most [`MAX_CALL_BYTES`]. Each entry is a row's index.
fn calls(rows: &[Row]) -> Vec<Vec<usize>> {
    let mut workspaces: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let at = *position
            .entry(row.assignment.workspace_id.as_str())
            .or_insert_with(|| {
                workspaces.push((0, Vec::new()));
                workspaces.len() - 1
            });
        if let Some((bytes, indexes)) = workspaces.get_mut(at) {
            *bytes += row.assignment.encoded_len();
            indexes.push(i);
        }
    }
    let mut calls = Vec::new();
    let (mut call, mut call_bytes) = (Vec::new(), 0);
    for (bytes, indexes) in workspaces {
        if !call.is_empty() && call_bytes + bytes > MAX_CALL_BYTES {
            calls.push(std::mem::take(&mut call));
            call_bytes = 0;
        }
        call.extend(indexes);
        call_bytes += bytes;
    }
    if !call.is_empty() {
        calls.push(call);
    }
    calls
}

/// What the migration did (or would do) to one user.
#[derive(Debug, Serialize)]
struct ChangedView {
    workspace_id: String,
    user_id: String,
    /// The membership given, if it changed.
    membership_set: Option<&'static str>,
    grants_added: Vec<GrantView>,
}

/// A row the server would not migrate.
#[derive(Debug, Serialize)]
struct RejectedView {
    /// Its line in the file, if the server named a row of it.
    line: Option<u64>,
    workspace_id: String,
    user_id: String,
    legacy_role: String,
    source_id: String,
    reason: String,
}

/// The report.
#[derive(Debug, Serialize)]
struct ReportView {
    dry_run: bool,
    revision: u64,
    changed: Vec<ChangedView>,
    rejected: Vec<RejectedView>,
}

impl ReportView {
    fn add(&mut self, rows: &[Row], call: &[usize], response: proto::MigrateLegacyRolesResponse) {
        self.revision = self.revision.max(response.revision);
        self.changed
            .extend(response.changed.into_iter().map(|user| ChangedView {
                membership_set: match membership_text(user.membership_set) {
                    "unspecified" => None,
                    membership => Some(membership),
                },
                grants_added: user.grants_added.iter().map(GrantView::from).collect(),
                workspace_id: user.workspace_id,
                user_id: user.user_id,
            }));
        for rejected in response.rejected {
            let row = usize::try_from(rejected.index)
                .ok()
                .and_then(|i| call.get(i))
                .and_then(|&i| rows.get(i));
            let column = |f: fn(&Row) -> &str| row.map(f).unwrap_or_default().to_owned();
            let mut reason = rejected.reason;
            // The server only sees "unspecified"; say what the file holds.
            if let Some(row) =
                row.filter(|r| legacy_role(&r.legacy_role) == proto::LegacyRole::Unspecified)
            {
                reason = format!(
                    "{reason} (the file says `{}`; expected `workspace_owner`, \
                     `workspace_read_only` or `source_collaborator`)",
                    row.legacy_role
                );
            }
            self.rejected.push(RejectedView {
                line: row.map(|r| r.line),
                workspace_id: column(|r| &r.assignment.workspace_id),
                user_id: column(|r| &r.assignment.user_id),
                legacy_role: column(|r| &r.legacy_role),
                source_id: column(|r| &r.assignment.source_id),
                reason,
            });
        }
    }

    fn render(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let users = plural(self.changed.len(), "user");
        let rows = plural(self.rejected.len(), "row");
        let mut out = if self.dry_run {
            format!(
                "dry run: {users} would change, {rows} rejected; nothing was written (revision {})\n",
                self.revision
            )
        } else {
            format!(
                "{users} changed, {rows} rejected (revision {})\n",
                self.revision
            )
        };
        if !self.changed.is_empty() {
            let mut table = Table::new(&["WORKSPACE", "USER", "MEMBERSHIP", "GRANTS ADDED"]);
            for user in &self.changed {
                let grants: Vec<String> = user
                    .grants_added
                    .iter()
                    .map(|g| format!("{} on {}", g.role, g.scope))
                    .collect();
                table.push(vec![
                    user.workspace_id.clone(),
                    user.user_id.clone(),
                    user.membership_set.unwrap_or_default().to_owned(),
                    grants.join(", "),
                ]);
            }
            out.push('\n');
            out.push_str(&table.render());
        }
        if !self.rejected.is_empty() {
            let mut table = Table::new(&["LINE", "WORKSPACE", "USER", "LEGACY ROLE", "REASON"]);
            for row in &self.rejected {
                table.push(vec![
                    row.line.map(|l| l.to_string()).unwrap_or_default(),
                    row.workspace_id.clone(),
                    row.user_id.clone(),
                    row.legacy_role.clone(),
                    row.reason.clone(),
                ]);
            }
            out.push('\n');
            out.push_str(&table.render());
        }
        out
    }
}

/// Runs `accessd migrate-legacy`: exit status 0 when every row migrated, 3 when some
/// were rejected (the others still migrated).
pub async fn migrate(args: MigrateArgs) -> Result<ExitCode, CliError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::file(&args.file, format_args!("cannot read: {e}")))?;
    let rows = parse(&args.file, &bytes)?;
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let mut report = ReportView {
        dry_run: args.dry_run,
        revision: 0,
        changed: Vec::new(),
        rejected: Vec::new(),
    };
    for call in calls(&rows) {
        let assignments = call
            .iter()
            .filter_map(|&i| rows.get(i))
            .map(|row| row.assignment.clone())
            .collect();
        let response = admin
            .migrate_legacy_roles(proto::MigrateLegacyRolesRequest {
                assignments,
                dry_run: args.dry_run,
            })
            .await?
            .into_inner();
        report.add(&rows, &call, response);
    }
    report
        .changed
        .sort_by(|a, b| (&a.workspace_id, &a.user_id).cmp(&(&b.workspace_id, &b.user_id)));
    report.rejected.sort_by_key(|r| r.line);
    output::print(args.options.output, &report, ReportView::render)?;
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Row>, String> {
        parse(Path::new("legacy.csv"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn rows_keep_their_line_numbers_and_ids_may_hold_quoted_commas() {
        let rows = parsed(
            "workspace_id,user_id,legacy_role,source_id\n\
             acme,olivia,workspace_owner,\n\
             acme,\"sam,jr\",source_collaborator,ios-prod\n\
             acme,rita,admin,\n",
        )
        .unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert_eq!(rows[1].assignment.user_id, "sam,jr");
        assert_eq!(
            rows[1].assignment.legacy_role,
            i32::from(proto::LegacyRole::SourceCollaborator)
        );
        assert_eq!(
            rows[2].assignment.legacy_role,
            i32::from(proto::LegacyRole::Unspecified)
        );
    }

    #[test]
    fn a_row_with_missing_fields_is_refused_with_its_line() {
        let err = parsed(
            "workspace_id,user_id,legacy_role,source_id\n\
             acme,olivia,workspace_owner,\n\
             acme,sam\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "`legacy.csv`: line 3: expected 4 fields \
             (`workspace_id,user_id,legacy_role,source_id`), found 2"
        );
    }

    #[test]
    fn a_wrong_header_is_refused_naming_the_expected_one() {
        let err = parsed("ws,user,role,source\nacme,olivia,workspace_owner,\n").unwrap_err();
        assert_eq!(
            err,
            "`legacy.csv`: line 1: expected the header \
             `workspace_id,user_id,legacy_role,source_id`, found `ws,user,role,source`"
        );
        assert!(parsed("").unwrap_err().contains("found an empty file"));
    }

    #[test]
    fn calls_hold_whole_workspaces() {
        let row = |ws: &str, user: &str| Row {
            line: 0,
            legacy_role: String::new(),
            assignment: proto::LegacyAssignment {
                workspace_id: ws.into(),
                user_id: user.into(),
                legacy_role: 1,
                source_id: "x".repeat(120),
            },
        };
        let mut rows = Vec::new();
        for i in 0..30_000 {
            rows.push(row(if i % 2 == 0 { "a" } else { "b" }, &i.to_string()));
        }
        let calls = calls(&rows);
        assert_eq!(calls.len(), 2);
        assert!(
            calls[0]
                .iter()
                .all(|&i| rows[i].assignment.workspace_id == "a")
        );
        assert!(
            calls[1]
                .iter()
                .all(|&i| rows[i].assignment.workspace_id == "b")
        );
        assert_eq!(calls[0].len() + calls[1].len(), rows.len());
    }
}
