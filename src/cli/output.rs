//! Printing answers: aligned tables for people, JSON of plain structs for scripts, and
//! the views of the server's messages that both are made from.

use std::{fmt, io::Write};

use serde::Serialize;

use super::{CliError, args::OutputFormat};
use crate::proto;

/// Columns with a header row, each as wide as its widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; an empty cell prints as `-`.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(
            row.into_iter()
                .map(|cell| {
                    if cell.is_empty() {
                        "-".to_owned()
                    } else {
                        cell
                    }
                })
                .collect(),
        );
    }

    /// The table as lines of text, columns two spaces apart.
    pub fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let mut widths = vec![0; self.header.len()];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line.iter()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (cell, width) in line.iter().zip(&widths) {
                text.push_str(&format!("{cell:<width$}  "));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes `text` to standard output. A closed pipe (`accessd list | head`) is not an error.
pub fn print_text(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Input(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// `value` as pretty JSON with a final newline.
pub fn json_text<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| CliError::Input(format!("cannot write JSON: {e}")))
}

/// Prints `value` as JSON, or as the table `table` makes of it.
pub fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => print_text(&json_text(value)?),
        OutputFormat::Table => print_text(&table(value)),
    }
}

/// A grant's scope, written as the command line writes it: `all` or `TYPE:ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeView {
    /// Every current and future instance.
    All,
    /// One instance.
    Instance {
        /// Its type.
        type_name: String,
        /// Its id.
        id: String,
    },
    /// A scope the server left out (never sent by accessd).
    Missing,
}

impl From<Option<&proto::Scope>> for ScopeView {
    fn from(scope: Option<&proto::Scope>) -> Self {
        match scope.and_then(|s| s.kind.as_ref()) {
            Some(proto::scope::Kind::All(_)) => Self::All,
            Some(proto::scope::Kind::Instance(r)) => Self::Instance {
                type_name: r.r#type.clone(),
                id: r.id.clone(),
            },
            None => Self::Missing,
        }
    }
}

impl fmt::Display for ScopeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Instance { type_name, id } => write!(f, "{type_name}:{id}"),
            Self::Missing => Ok(()),
        }
    }
}

impl Serialize for ScopeView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A membership as a word: `owner` or `member`.
pub fn membership_text(raw: i32) -> &'static str {
    match proto::Membership::try_from(raw) {
        Ok(proto::Membership::Owner) => "owner",
        Ok(proto::Membership::Member) => "member",
        _ => "unspecified",
    }
}

/// A grant, in JSON and tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// The role's name.
    pub role: String,
    /// `all`, or the instance as `TYPE:ID`.
    pub scope: ScopeView,
}

impl From<&proto::Grant> for GrantView {
    fn from(grant: &proto::Grant) -> Self {
        Self {
            role: grant.role.clone(),
            scope: ScopeView::from(grant.scope.as_ref()),
        }
    }
}

/// One user of the team table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryView {
    /// The user.
    pub user_id: String,
    /// `owner` or `member`.
    pub membership: &'static str,
    /// Their grants.
    pub grants: Vec<GrantView>,
}

impl From<&proto::AccessEntry> for EntryView {
    fn from(entry: &proto::AccessEntry) -> Self {
        Self {
            user_id: entry.user_id.clone(),
            membership: membership_text(entry.membership),
            grants: entry.grants.iter().map(GrantView::from).collect(),
        }
    }
}

/// A decision with what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    /// Whether the permission is allowed.
    pub allowed: bool,
    /// What decided it: `owner`, `member` or `grant` when allowed; when denied, the
    /// reason: `not_a_member`, `no_covering_grant`, `product_not_enabled` or
    /// `resource_not_registered`.
    pub basis: String,
    /// The allowing grant, when `basis` is `grant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView>,
    /// The server's one-line explanation.
    pub explanation: String,
}

impl From<&proto::Decision> for DecisionView {
    fn from(decision: &proto::Decision) -> Self {
        use proto::decision::Basis;
        let (basis, grant) = match &decision.basis {
            Some(Basis::Membership(m)) => (membership_text(*m).to_owned(), None),
            Some(Basis::Grant(g)) => ("grant".to_owned(), Some(GrantView::from(g))),
            Some(Basis::Denial(d)) => (
                proto::DenialReason::try_from(*d)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("DENIAL_REASON_")
                    .to_ascii_lowercase(),
                None,
            ),
            None => ("unspecified".to_owned(), None),
        };
        Self {
            allowed: decision.allowed,
            basis,
            grant,
            explanation: decision.explanation.clone(),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WriteView {
    /// False when the write was already in effect.
    pub changed: bool,
    /// The revision it produced, or the current one.
    pub revision: u64,
}

/// Prints the answer to a write.
pub fn print_write(format: OutputFormat, response: &proto::WriteResponse) -> Result<(), CliError> {
    let view = WriteView {
        changed: response.changed,
        revision: response.revision,
    };
    print(format, &view, |v| {
        if v.changed {
            format!("changed at revision {}\n", v.revision)
        } else {
            format!("no change: already in effect at revision {}\n", v.revision)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns_and_marks_empty_cells() {
        let mut table = Table::new(&["USER", "ROLE", "SCOPE"]);
        table.push(vec!["olivia".into(), String::new(), String::new()]);
        table.push(vec![
            "sam".into(),
            "source_admin".into(),
            "source:ios".into(),
        ]);
        assert_eq!(
            table.render(),
            "USER    ROLE          SCOPE\n\
             olivia  -             -\n\
             sam     source_admin  source:ios\n"
        );
    }

    #[test]
    fn a_denial_is_named_by_its_reason() {
        let decision = proto::Decision {
            allowed: false,
            basis: Some(proto::decision::Basis::Denial(
                proto::DenialReason::NoCoveringGrant.into(),
            )),
            explanation: "denied".into(),
        };
        assert_eq!(DecisionView::from(&decision).basis, "no_covering_grant");
    }
}
