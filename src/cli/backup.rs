//! `accessd backup`: the whole database read at one revision through the Export RPC (one
//! published snapshot, so writes go on meanwhile) and written as a backup file, whole or
//! not at all. It decides nothing: the server's records are written as sent.

use std::{
    io::{BufWriter, Write},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::{
    CliError,
    args::BackupArgs,
    backup_file::{BackupWriter, Header, VERSION},
    client, output,
    records::RecordLine,
};
use crate::proto::{self, replication_service_client::ReplicationServiceClient};

/// What a backup wrote, as printed.
#[derive(Debug, Serialize)]
struct BackupView {
    revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_id: Option<String>,
    records: u64,
    bytes: u64,
    file: String,
}

/// Runs `accessd backup`.
pub async fn backup(args: BackupArgs) -> Result<(), CliError> {
    let options = &args.options;
    let history_id = history(&args).await;
    let mut admin = client::admin(&options.server, &options.token).await?;
    let mut stream = admin
        .export(proto::ExportRequest::default())
        .await?
        .into_inner();
    // The header names the revision, which comes with the first message.
    let first = stream.message().await?.ok_or_else(|| {
        CliError::Input("the server ended the export without its revision".to_owned())
    })?;
    let header = Header {
        accessd_backup: VERSION,
        revision: first.revision,
        history_id: history_id.clone(),
        created_unix_millis: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    let out = &args.out;
    let to_stdout = out.as_os_str() == "-";
    let (records, bytes) = if to_stdout {
        let stdout = BufWriter::new(std::io::stdout().lock());
        let (_, records, bytes) = write_backup(stdout, &header, first, stream)
            .await
            .map_err(|e| e.into_error(Path::new("standard output")))?;
        (records, bytes)
    } else {
        write_file(out, &header, first, stream).await?
    };
    let view = BackupView {
        revision: header.revision,
        history_id,
        records,
        bytes,
        file: if to_stdout {
            "-".to_owned()
        } else {
            out.display().to_string()
        },
    };
    let text = |v: &BackupView| {
        format!(
            "backed up revision {} of history {}: {} records, {} bytes, to {}\n",
            v.revision,
            v.history_id.as_deref().unwrap_or("(not told)"),
            v.records,
            v.bytes,
            v.file
        )
    };
    if to_stdout {
        // Standard output holds the backup: the summary goes beside it.
        eprint!("{}", text(&view));
        Ok(())
    } else {
        output::print(options.output, &view, text)
    }
}

/// The server's history id, if it tells it (its ReplicationService may need a scope
/// the token lacks: the backup is made without it).
async fn history(args: &BackupArgs) -> Option<String> {
    let token = client::bearer(&args.options.token).ok()?;
    let channel = client::channel(&args.options.server).await.ok()?;
    let status = ReplicationServiceClient::with_interceptor(channel, token)
        .get_replication_status(proto::GetReplicationStatusRequest {})
        .await
        .ok()?
        .into_inner();
    Some(status.history_id).filter(|id| !id.is_empty())
}

/// Why writing the backup stopped.
enum Stopped {
    /// The server failed the call, or sent what a backup cannot hold.
    Call(CliError),
    /// The output could not be written.
    Write(std::io::Error),
}

impl Stopped {
    fn into_error(self, out: &Path) -> CliError {
        match self {
            Self::Call(e) => e,
            Self::Write(e) => CliError::file(out, format_args!("cannot write: {e}")),
        }
    }
}

/// Writes the backup of the export `first` begins and `stream` continues to `sink`;
/// returns the sink, with the records and bytes written.
async fn write_backup<W: Write>(
    sink: W,
    header: &Header,
    first: proto::ExportResponse,
    mut stream: tonic::Streaming<proto::ExportResponse>,
) -> Result<(W, u64, u64), Stopped> {
    let mut writer = BackupWriter::new(sink, header).map_err(Stopped::Write)?;
    let mut chunk = Some(first);
    while let Some(message) = chunk {
        if message.revision != header.revision {
            return Err(Stopped::Call(CliError::Input(format!(
                "the export changed revision mid-way ({} then {})",
                header.revision, message.revision
            ))));
        }
        for record in message.records {
            let line =
                RecordLine::from_record(record).map_err(|e| Stopped::Call(CliError::Input(e)))?;
            writer.record(&line).map_err(Stopped::Write)?;
        }
        chunk = stream
            .message()
            .await
            .map_err(|status| Stopped::Call(status.into()))?;
    }
    writer.finish().map_err(Stopped::Write)
}

/// Writes the backup to `out` under a temporary name, makes it durable, and gives it its
/// name: a backup file is whole or absent. The temporary is removed on failure.
async fn write_file(
    out: &Path,
    header: &Header,
    first: proto::ExportResponse,
    stream: tonic::Streaming<proto::ExportResponse>,
) -> Result<(u64, u64), CliError> {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    let partial = std::path::PathBuf::from(name);
    let cannot_write = |e: std::io::Error| CliError::file(out, format_args!("cannot write: {e}"));
    let file = std::fs::File::create(&partial).map_err(cannot_write)?;
    let written = match write_backup(BufWriter::new(file), header, first, stream).await {
        Ok((sink, records, bytes)) => sink
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, out))
            .and_then(|()| sync_parent(out))
            .map(|()| (records, bytes))
            .map_err(cannot_write),
        Err(stopped) => Err(stopped.into_error(out)),
    };
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// Makes a new name in `path`'s directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}
