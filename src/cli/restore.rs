//! `accessd restore`: a backup file written into an empty data directory as the data of
//! a leader at the backup's revision, under a new history id. Offline: no server runs on
//! the directory. Everything is checked before anything is written; the copy is then
//! written as a follower's bootstrap is (a crash midway leaves a marker, and the next open
//! discards the partial copy) and checked again with `verify` once closed.

use std::{path::Path, process::ExitCode, sync::Arc};

use serde::Serialize;

use super::{CliError, EXIT_DENIED, args::RestoreArgs, backup_file, output, verify::findings_text};
use crate::{
    api::changes::snapshot_changes,
    model::{Catalog, Change},
    store::{BootstrapStep, Store, StoreConfig, verify},
};

/// Changes written per step of the copy, as a follower's bootstrap writes them.
const STEP_CHANGES: usize = 50_000;

/// What a restore did, as printed.
#[derive(Debug, Serialize)]
struct RestoreView {
    data_dir: String,
    revision: u64,
    records: u64,
    history_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_history_id: Option<String>,
    workspaces: usize,
    members: usize,
    instances: usize,
    grants: usize,
    violations: usize,
    findings: Vec<verify::Finding>,
}

/// Runs `accessd restore` with `catalog`, the one the restored server is to run with.
pub async fn restore(args: RestoreArgs, catalog: Catalog) -> Result<ExitCode, CliError> {
    let dir = &args.data_dir;
    refuse_unless_empty(dir)?;
    // Every record is read and converted before anything is written: a backup that is
    // cut short, altered, or holds what the catalog cannot represent restores nothing.
    let mut records = 0_u64;
    backup_file::read(&args.file, |line, record| {
        records += 1;
        changes(&catalog, &args.file, line, record).map(drop)
    })?;

    let catalog = Arc::new(catalog);
    let store = Store::open(dir, Arc::clone(&catalog), &StoreConfig::default())
        .map_err(|e| CliError::file(dir, format_args!("cannot open: {e}")))?;
    let history_id = store.identity().history.clone();
    let failed = |e: crate::store::StoreError| {
        CliError::file(
            dir,
            format_args!(
                "cannot write the restored copy: {e}; the directory holds a partial copy, \
                 which accessd discards when it next opens it: delete it and restore again"
            ),
        )
    };
    store
        .bootstrap(BootstrapStep::Begin)
        .await
        .map_err(failed)?;
    // Read on a blocking thread, a step at a time, while the step before is written:
    // memory holds two steps, not the backup.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Change>>(1);
    let (file, reading) = (args.file.clone(), Arc::clone(&catalog));
    let reader = tokio::task::spawn_blocking(move || {
        let stopped = || CliError::Input("the restore stopped".to_owned());
        let mut step: Vec<Change> = Vec::with_capacity(STEP_CHANGES);
        let header = backup_file::read(&file, |line, record| {
            step.extend(changes(&reading, &file, line, record)?);
            if step.len() >= STEP_CHANGES {
                let full = std::mem::replace(&mut step, Vec::with_capacity(STEP_CHANGES));
                sender.blocking_send(full).map_err(|_| stopped())?;
            }
            Ok(())
        })?;
        sender.blocking_send(step).map_err(|_| stopped())?;
        Ok::<_, CliError>(header)
    });
    while let Some(changes) = receiver.recv().await {
        store
            .bootstrap(BootstrapStep::Changes(changes))
            .await
            .map_err(failed)?;
    }
    // Read whole once already, the file must still be the same: if not, the copy is
    // left unended, and the next open discards it.
    let header = reader
        .await
        .map_err(|e| CliError::Input(format!("reading the backup failed: {e}")))??;
    store
        .bootstrap(BootstrapStep::End {
            revision: header.revision,
            following: None,
        })
        .await
        .map_err(failed)?;
    store.close();
    drop(store);

    let verified = verify::verify(dir, &catalog)
        .map_err(|e| CliError::file(dir, format_args!("cannot check the restored copy: {e}")))?;
    let view = RestoreView {
        data_dir: dir.display().to_string(),
        revision: verified.revision,
        records,
        history_id,
        backup_history_id: header.history_id,
        workspaces: verified.workspaces,
        members: verified.members,
        instances: verified.instances,
        grants: verified.grants,
        violations: verified.violations(),
        findings: verified.findings.clone(),
    };
    output::print(args.output, &view, |v| {
        let mut text = format!(
            "restored revision {} into {}: {} records ({} workspaces, {} members, {} \
             instances, {} grants)\n\
             history {} (new: followers of the backed-up server must bootstrap again)\n",
            v.revision,
            v.data_dir,
            v.records,
            v.workspaces,
            v.members,
            v.instances,
            v.grants,
            v.history_id,
        );
        text.push_str(&format!("verify: {} violations\n", v.violations));
        text.push_str(&findings_text(&v.findings));
        text
    })?;
    Ok(if verified.violations() > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The changes that restore `record`, line `line` of `file`.
fn changes(
    catalog: &Catalog,
    file: &Path,
    line: u64,
    record: crate::cli::records::RecordLine,
) -> Result<Vec<Change>, CliError> {
    let refused = |why: String| {
        CliError::file(
            file,
            format_args!(
                "line {line}: {why}; restore with the role catalog the backed-up server ran \
                 with (`--roles`)"
            ),
        )
    };
    let record = record.into_record().map_err(refused)?;
    snapshot_changes(catalog, std::slice::from_ref(&record))
        .map_err(|status| refused(status.message().replace("records[0].", "")))
}

/// Refuses a data directory that holds anything, naming what it holds.
fn refuse_unless_empty(dir: &Path) -> Result<(), CliError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CliError::file(dir, format_args!("cannot read: {e}"))),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    Err(CliError::file(
        dir,
        format_args!(
            "not empty (it holds {}{}): restore writes only into an empty data directory; \
             give a new one, or move this one away first",
            shown.join(", "),
            if names.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ),
    ))
}
