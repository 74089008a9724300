//! `accessd import FILE`: streams a records file (JSON lines, see `records`) to the
//! Import RPC while reading it, and prints what the server applied and rejected, with
//! the file's line numbers.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::ExitCode,
    time::Instant,
};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};

use super::{
    CliError, EXIT_DENIED,
    args::{ImportArgs, OutputFormat},
    client,
    output::{self, Table},
    records::RecordLine,
};
use crate::proto;

/// Records per message of the stream, at most.
const CHUNK: usize = 2_000;
/// Bytes of lines per message, at most (unless one line is longer): well under the
/// server's 4 MiB limit on a message.
const CHUNK_BYTES: usize = 1024 * 1024;

/// What the file held that never reached the server as a record.
#[derive(Default)]
struct Reading {
    /// Record index and reason of lines that did not parse (sent as empty records so
    /// that the server's indexes stay the file's), in index order.
    malformed: Vec<(u64, String)>,
    /// Record indexes at which blank lines were skipped, one entry per blank line.
    blanks_before: Vec<u64>,
}

impl Reading {
    /// The 1-based line number of record `index`.
    fn line(&self, index: u64) -> u64 {
        let blanks = self.blanks_before.partition_point(|&at| at <= index) as u64;
        index + 1 + blanks
    }

    /// Why record `index` did not parse, if it did not.
    fn malformed(&self, index: u64) -> Option<&str> {
        self.malformed
            .binary_search_by_key(&index, |(at, _)| *at)
            .ok()
            .and_then(|at| self.malformed.get(at))
            .map(|(_, reason)| reason.as_str())
    }
}

/// The record on one line of the file, or why there is none.
fn parse(bytes: &[u8]) -> Result<proto::Record, String> {
    let line = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    RecordLine::parse(line).and_then(RecordLine::into_record)
}

/// Reads `file` line by line, sending its records in chunks, then `None` to say the file
/// was read to its end. Stops early, without error, once the call has failed.
fn read(
    file: File,
    path: &Path,
    sender: &mpsc::Sender<Option<proto::ImportRequest>>,
) -> Result<Reading, CliError> {
    let mut reader = BufReader::new(file);
    let mut reading = Reading::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut chunk_bytes = 0;
    let mut index = 0u64;
    let mut bytes = Vec::new();
    let mut first = true;
    loop {
        bytes.clear();
        if reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| CliError::file(path, format_args!("cannot read: {e}")))?
            == 0
        {
            break;
        }
        let mut line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if std::mem::take(&mut first) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.trim_ascii().is_empty() {
            reading.blanks_before.push(index);
            continue;
        }
        chunk.push(parse(line).unwrap_or_else(|reason| {
            reading.malformed.push((index, reason));
            proto::Record { kind: None }
        }));
        chunk_bytes += line.len();
        index += 1;
        if chunk.len() == CHUNK || chunk_bytes >= CHUNK_BYTES {
            let records = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            chunk_bytes = 0;
            if sender
                .blocking_send(Some(proto::ImportRequest { records }))
                .is_err()
            {
                // The call failed; its status says why.
                return Ok(reading);
            }
        }
    }
    if !chunk.is_empty() {
        let _ = sender.blocking_send(Some(proto::ImportRequest { records: chunk }));
    }
    let _ = sender.blocking_send(None);
    Ok(reading)
}

#[derive(Serialize)]
struct Rejection {
    line: u64,
    reason: String,
}

#[derive(Serialize)]
struct Report {
    records: u64,
    applied: u64,
    unchanged: u64,
    rejected: u64,
    revision: u64,
    batches: u64,
    seconds: f64,
    records_per_second: f64,
    rejections: Vec<Rejection>,
}

/// Runs `accessd import`.
pub async fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
    let path = args.file.clone();
    let file =
        File::open(&path).map_err(|e| CliError::file(&path, format_args!("cannot read: {e}")))?;
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel(8);
    let mut reader = tokio::task::spawn_blocking(move || read(file, &path, &sender));
    // The stream ends at the reader's end-of-file marker, never merely because the
    // reader stopped: a file that could not be read to its end must not be taken for a
    // whole one. On a read error the call is dropped unfinished, which cancels it.
    let requests = ReceiverStream::new(receiver)
        .chain(tokio_stream::pending())
        .map_while(|chunk| chunk);
    let call = admin.import(requests);
    tokio::pin!(call);
    let joined = |read: Result<Result<Reading, CliError>, tokio::task::JoinError>| {
        read.map_err(|e| CliError::Input(format!("reading the file failed: {e}")))?
    };
    let (response, reading) = tokio::select! {
        read = &mut reader => {
            let reading = joined(read)?;
            (call.await?, reading)
        }
        // Before the reader is done, only a refusal or a lost connection ends the call.
        answer = &mut call => {
            let response = answer?;
            (response, joined(reader.await)?)
        }
    };
    let response = response.into_inner();
    let seconds = started.elapsed().as_secs_f64();

    let rejections = response
        .rejected
        .iter()
        .map(|r| Rejection {
            line: reading.line(r.index),
            reason: reading.malformed(r.index).map_or_else(
                || r.reason.clone(),
                |local| format!("malformed line: {local}"),
            ),
        })
        .collect();
    let report = Report {
        records: response.records,
        applied: response.applied,
        unchanged: response.unchanged,
        rejected: response.rejected_count,
        revision: response.revision,
        batches: response.batches,
        seconds,
        records_per_second: response.records as f64 / seconds.max(1e-9),
        rejections,
    };
    match args.options.output {
        OutputFormat::Json => output::print_text(&output::json_text(&report)?)?,
        OutputFormat::Table => output::print_text(&report_text(&report))?,
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

fn report_text(report: &Report) -> String {
    let mut text = format!(
        "{} records: {} applied, {} unchanged, {} rejected; revision {} after {} batches; {:.2} s ({:.0} records/s)\n",
        report.records,
        report.applied,
        report.unchanged,
        report.rejected,
        report.revision,
        report.batches,
        report.seconds,
        report.records_per_second,
    );
    if !report.rejections.is_empty() {
        let mut table = Table::new(&["LINE", "REASON"]);
        for rejection in &report.rejections {
            table.push(vec![rejection.line.to_string(), rejection.reason.clone()]);
        }
        text.push_str(&table.render());
        if report.rejected > report.rejections.len() as u64 {
            text.push_str(&format!(
                "... and {} more rejected records\n",
                report.rejected - report.rejections.len() as u64
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_account_for_skipped_blank_lines() {
        // Lines: 1 record 0, 2 blank, 3 blank, 4 record 1, 5 record 2, 6 blank, 7 record 3.
        let reading = Reading {
            malformed: Vec::new(),
            blanks_before: vec![1, 1, 3],
        };
        let lines: Vec<u64> = (0..4).map(|i| reading.line(i)).collect();
        assert_eq!(lines, [1, 4, 5, 7]);
    }

    #[test]
    fn a_byte_order_mark_crlf_endings_and_a_line_that_is_not_utf8_are_read_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let member = br#"{"member":{"workspace":"a","user":"u","membership":"member"}}"#;
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(member);
        bytes.extend_from_slice(b"\r\n\r\n\xFF\xFE\n");
        bytes.extend_from_slice(member);
        std::fs::write(&path, bytes).unwrap();
        let (sender, mut receiver) = mpsc::channel(8);
        let reading = read(File::open(&path).unwrap(), &path, &sender).unwrap();
        assert_eq!(reading.blanks_before, [1]);
        assert_eq!(reading.malformed.len(), 1);
        assert_eq!(reading.malformed[0].0, 1);
        assert!(reading.malformed[0].1.starts_with("not UTF-8"));
        assert_eq!(reading.line(1), 3);
        let chunk = receiver.try_recv().unwrap().unwrap();
        let kinds: Vec<bool> = chunk.records.iter().map(|r| r.kind.is_some()).collect();
        assert_eq!(kinds, [true, false, true]);
        assert!(
            receiver.try_recv().unwrap().is_none(),
            "no end-of-file marker"
        );
    }
}
