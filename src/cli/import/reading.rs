//! Reading a records file into the Import stream's chunks, from any record on, while
//! keeping what a report needs to name the file's lines.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use tokio::{
    runtime::Handle,
    sync::{Notify, mpsc},
};

use super::super::{CliError, records::RecordLine};
use crate::proto;

/// Records per message of the stream, at most.
const CHUNK: usize = 2_000;
/// Bytes of lines per message, at most (unless one line is longer): well under the
/// server's 4 MiB limit on a message.
const CHUNK_BYTES: usize = 1024 * 1024;

/// What the file held that never reached the server as a record.
#[derive(Debug, Default)]
pub struct Reading {
    /// Record index and reason of lines that did not parse (sent as empty records so
    /// that the server's indexes stay the file's), in index order.
    malformed: Vec<(u64, String)>,
    /// Record indexes at which blank lines were skipped, one entry per blank line.
    blanks_before: Vec<u64>,
}

impl Reading {
    /// The 1-based line number of record `index`.
    pub fn line(&self, index: u64) -> u64 {
        let blanks = self.blanks_before.partition_point(|&at| at <= index) as u64;
        index + 1 + blanks
    }

    /// Why record `index` did not parse, if it did not.
    pub fn malformed(&self, index: u64) -> Option<&str> {
        self.malformed
            .binary_search_by_key(&index, |(at, _)| *at)
            .ok()
            .and_then(|at| self.malformed.get(at))
            .map(|(_, reason)| reason.as_str())
    }
}

/// Where the chunks go: the call's stream, until the call is given up.
pub struct Feed {
    /// The call's stream of chunks; `None` marks the end of the file.
    pub sender: mpsc::Sender<Option<proto::ImportRequest>>,
    /// Notified when the call is given up, so that a send waiting for room stops
    /// waiting even if the call's stream is never dropped.
    pub stop: std::sync::Arc<Notify>,
    /// The runtime the call runs on.
    pub runtime: Handle,
}

impl Feed {
    /// Sends `message`; false once the call is over.
    fn send(&self, message: Option<proto::ImportRequest>) -> bool {
        self.runtime.block_on(async {
            tokio::select! {
                biased;
                () = self.stop.notified() => false,
                sent = self.sender.send(message) => sent.is_ok(),
            }
        })
    }
}

/// The record on one line of the file, or why there is none.
fn parse(bytes: &[u8]) -> Result<proto::Record, String> {
    let line = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    RecordLine::parse(line).and_then(RecordLine::into_record)
}

/// Reads `file` line by line and sends its records from record `from` on, in chunks, the
/// first (sent even if empty) saying where they start; then `None` to say the file was
/// read to its end. Every line is read, so the reading names every line. Stops early,
/// without error, once the call is over.
pub fn read(file: File, path: &Path, from: u64, feed: &Feed) -> Result<Reading, CliError> {
    let mut reader = BufReader::new(file);
    let mut reading = Reading::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut chunk_bytes = 0;
    let mut index = 0u64;
    let mut bytes = Vec::new();
    let mut first_line = true;
    let mut first_index = Some(from);
    // A failed send means the call is over; its outcome says why.
    let send = |records: Vec<proto::Record>, first_index: Option<u64>| {
        feed.send(Some(proto::ImportRequest {
            records,
            first_index: first_index.unwrap_or_default(),
        }))
    };
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
        if std::mem::take(&mut first_line) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.trim_ascii().is_empty() {
            reading.blanks_before.push(index);
            continue;
        }
        let record = parse(line).unwrap_or_else(|reason| {
            reading.malformed.push((index, reason));
            proto::Record { kind: None }
        });
        index += 1;
        if index <= from {
            continue;
        }
        chunk.push(record);
        chunk_bytes += line.len();
        if chunk.len() == CHUNK || chunk_bytes >= CHUNK_BYTES {
            let records = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            chunk_bytes = 0;
            if !send(records, first_index.take()) {
                return Ok(reading);
            }
        }
    }
    if (!chunk.is_empty() || first_index.is_some()) && !send(chunk, first_index.take()) {
        return Ok(reading);
    }
    feed.send(None);
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `path` from record `from` into a channel, returning what was sent.
    fn read_all(path: &Path, from: u64) -> (Reading, mpsc::Receiver<Option<proto::ImportRequest>>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (sender, receiver) = mpsc::channel(8);
        let feed = Feed {
            sender,
            stop: std::sync::Arc::new(Notify::new()),
            runtime: runtime.handle().clone(),
        };
        let reading = read(File::open(path).unwrap(), path, from, &feed).unwrap();
        (reading, receiver)
    }

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
        let (reading, mut receiver) = read_all(&path, 0);
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

    #[test]
    fn a_resumed_reading_sends_the_records_from_its_start_and_still_names_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let member = |user: &str| {
            format!(r#"{{"member":{{"workspace":"a","user":"{user}","membership":"member"}}}}"#)
        };
        let text = format!(
            "{}\nnot json\n\n{}\n{}\n",
            member("a"),
            member("b"),
            member("c")
        );
        std::fs::write(&path, text).unwrap();
        let (reading, mut receiver) = read_all(&path, 2);
        assert!(
            reading.malformed(1).is_some(),
            "a skipped line is still read"
        );
        assert_eq!(reading.line(3), 5);
        let chunk = receiver.try_recv().unwrap().unwrap();
        assert_eq!(chunk.first_index, 2);
        assert_eq!(chunk.records.len(), 2);
        assert!(receiver.try_recv().unwrap().is_none());

        let (_, mut receiver) = read_all(&path, 4);
        let chunk = receiver.try_recv().unwrap().unwrap();
        assert_eq!((chunk.first_index, chunk.records.len()), (4, 0));
        assert!(receiver.try_recv().unwrap().is_none());
    }
}
