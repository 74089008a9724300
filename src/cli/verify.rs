//! `accessd verify`: the stored invariants of a data directory checked offline, each
//! violation printed with where it is. The checks are the store's (`store::verify`);
//! this prints them, and exits with status 3 when any invariant does not hold.

use std::process::ExitCode;

use serde::Serialize;

use super::{CliError, EXIT_DENIED, args::VerifyArgs, output};
use crate::{
    model::Catalog,
    store::verify::{self, Finding, LogExtent, Severity, Verified},
};

/// What the check found, as printed.
#[derive(Debug, Serialize)]
struct VerifyView<'a> {
    data_dir: String,
    violations: usize,
    #[serde(flatten)]
    verified: &'a Verified,
}

/// Runs `accessd verify` with `catalog`, the one the server runs with.
pub fn verify(args: VerifyArgs, catalog: &Catalog) -> Result<ExitCode, CliError> {
    let verified = verify::verify(&args.data_dir, catalog).map_err(|e| match e {
        verify::VerifyError::Store(e) => {
            CliError::file(&args.data_dir, format_args!("cannot read: {e}"))
        }
        other => CliError::Input(other.to_string()),
    })?;
    let view = VerifyView {
        data_dir: args.data_dir.display().to_string(),
        violations: verified.violations(),
        verified: &verified,
    };
    output::print(args.output, &view, |v| {
        let lines = [
            ("data directory", v.data_dir.clone()),
            ("revision", v.verified.revision.to_string()),
            (
                "history",
                v.verified.history_id.clone().unwrap_or_else(|| "-".into()),
            ),
            ("workspaces", v.verified.workspaces.to_string()),
            ("members", v.verified.members.to_string()),
            ("instances", v.verified.instances.to_string()),
            ("grants", v.verified.grants.to_string()),
            ("change log", log_text(&v.verified.change_log)),
            ("violations", v.violations.to_string()),
        ];
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut text: String = lines
            .iter()
            .map(|(key, value)| format!("{key:width$}  {value}\n"))
            .collect();
        text.push_str(&findings_text(&v.verified.findings));
        text
    })?;
    Ok(if verified.violations() > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

fn log_text(log: &LogExtent) -> String {
    let files = format!(
        "{} file{}",
        log.segments,
        if log.segments == 1 { "" } else { "s" }
    );
    match (log.first_revision, log.last_revision) {
        (Some(first), Some(last)) => format!("{files}, revisions {first} to {last}"),
        _ => format!("{files}, no whole write group"),
    }
}

/// The findings as a table after a blank line; nothing if there are none.
pub fn findings_text(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let mut table = output::Table::new(&["SEVERITY", "PLACE", "PROBLEM"]);
    for finding in findings {
        let severity = match finding.severity {
            Severity::Violation => "violation",
            Severity::Note => "note",
        };
        table.push(vec![
            severity.to_owned(),
            finding.place.clone(),
            finding.problem.clone(),
        ]);
    }
    format!("\n{}", table.render())
}
