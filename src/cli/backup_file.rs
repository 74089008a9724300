//! The backup file of `accessd backup` and `accessd restore`: a header line, the records
//! as JSON lines (as `accessd export --format records` writes them), and an end line
//! with their count and the SHA-256 of every line before it, so that a truncated or
//! edited backup is refused before anything is restored from it.
//!
//! ```text
//! {"accessd_backup":1,"revision":42,"history_id":"5f0c…","created_unix_millis":1767225600000}
//! {"workspace":{"id":"acme","products":["connections","protocols"],"owners":["olivia"]}}
//! {"grant":{"workspace":"acme","user":"sam","role":"warehouse_read","scope":"all"}}
//! {"backup_end":{"records":2,"sha256":"9a1e…"}}
//! ```

use std::{
    io::{BufRead, Read, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CliError, records::RecordLine};

/// The version of the format this build writes and reads.
pub const VERSION: u32 = 1;

/// The first line: what the file is, and the revision its records were read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format's version: [`VERSION`].
    pub accessd_backup: u32,
    /// The revision of the server's state the records were read at.
    pub revision: u64,
    /// The history of the server's data, if it told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<String>,
    /// When the backup was made, in milliseconds since the Unix epoch.
    pub created_unix_millis: u64,
}

/// The last line's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// How many record lines there are.
    pub records: u64,
    /// The SHA-256, in hex, of every byte before the last line.
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    backup_end: End,
}

/// Writes a backup: the header, then records, then the end line; hashing as it goes.
pub struct BackupWriter<W: Write> {
    sink: W,
    hash: Sha256,
    records: u64,
    bytes: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup with `header`.
    pub fn new(sink: W, header: &Header) -> std::io::Result<Self> {
        let mut writer = Self {
            sink,
            hash: Sha256::new(),
            records: 0,
            bytes: 0,
        };
        let line = serde_json::to_vec(header)?;
        writer.hashed(&line)?;
        Ok(writer)
    }

    fn hashed(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.hash.update(line);
        self.hash.update(b"\n");
        self.sink.write_all(line)?;
        self.sink.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Appends one record.
    pub fn record(&mut self, record: &RecordLine) -> std::io::Result<()> {
        let line = serde_json::to_vec(record)?;
        self.records += 1;
        self.hashed(&line)
    }

    /// Writes the end line; returns the sink, with the records and bytes written.
    pub fn finish(mut self) -> std::io::Result<(W, u64, u64)> {
        let end = EndLine {
            backup_end: End {
                records: self.records,
                sha256: hex(&self.hash.finalize_reset()),
            },
        };
        let mut line = serde_json::to_vec(&end)?;
        line.push(b'\n');
        self.sink.write_all(&line)?;
        self.sink.flush()?;
        Ok((self.sink, self.records, self.bytes + line.len() as u64))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every record of the backup at `path` in order, calling `each` with its line
/// number; checks the end line's count and hash once all are read, so the caller must
/// not keep what it made of the records until this returns `Ok`. A backup cut short or
/// altered is reported as such before any error of its records (or of `each`), which
/// stops the calls.
pub fn read(
    path: &Path,
    mut each: impl FnMut(u64, RecordLine) -> Result<(), CliError>,
) -> Result<Header, CliError> {
    let failed = |why: String| CliError::file(path, why);
    let file = std::fs::File::open(path).map_err(|e| failed(format!("cannot read: {e}")))?;
    let mut reader = std::io::BufReader::new(file);
    let mut hash = Sha256::new();
    let mut line = Vec::new();
    let mut number = 0_u64;
    let mut header: Option<Header> = None;
    let mut records = 0_u64;
    let mut refused: Option<CliError> = None;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        if read == 0 {
            return Err(failed(format!(
                "ends after line {number} without its end line: the backup is incomplete \
                 (cut short while written or copied)"
            )));
        }
        number += 1;
        let text = std::str::from_utf8(&line)
            .map_err(|_| failed(format!("line {number}: not UTF-8")))?
            .trim_end_matches('\n');
        let Some(header) = &header else {
            let parsed: Header = serde_json::from_str(text).map_err(|e| {
                failed(format!(
                    "line 1 is not the header of an accessd backup ({e}); a records file of \
                     `accessd export` is loaded with `accessd import`"
                ))
            })?;
            if parsed.accessd_backup != VERSION {
                return Err(failed(format!(
                    "a backup of format {}, where this build reads format {VERSION}",
                    parsed.accessd_backup
                )));
            }
            hash.update(&line);
            header = Some(parsed);
            continue;
        };
        if let Ok(EndLine { backup_end }) = serde_json::from_str::<EndLine>(text) {
            let mut rest = Vec::new();
            let extra = reader
                .read_to_end(&mut rest)
                .map_err(|e| failed(format!("cannot read: {e}")))?;
            if extra > 0 {
                return Err(failed(format!(
                    "line {number} ends the backup, yet more follows it: the backup was altered"
                )));
            }
            if backup_end.records != records || backup_end.sha256 != hex(&hash.finalize_reset()) {
                return Err(failed(format!(
                    "its lines do not match its end line (line {number}: {} records and their \
                     SHA-256; {records} records read): the backup was altered or damaged",
                    backup_end.records
                )));
            }
            return match refused {
                Some(refused) => Err(refused),
                None => Ok(header.clone()),
            };
        }
        hash.update(&line);
        records += 1;
        if refused.is_none() {
            refused = RecordLine::parse(text)
                .map_err(|e| failed(format!("line {number}: {e}")))
                .and_then(|record| each(number, record))
                .err();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(records: &[RecordLine]) -> Vec<u8> {
        let header = Header {
            accessd_backup: VERSION,
            revision: 7,
            history_id: Some("abc".into()),
            created_unix_millis: 1,
        };
        let mut writer = BackupWriter::new(Vec::new(), &header).unwrap();
        for record in records {
            writer.record(record).unwrap();
        }
        writer.finish().unwrap().0
    }

    fn lines() -> Vec<RecordLine> {
        vec![
            RecordLine::Workspace {
                id: "acme".into(),
                products: vec![],
                owners: vec!["olivia".into()],
            },
            RecordLine::Member {
                workspace: "acme".into(),
                user: "sam".into(),
                membership: "member".into(),
            },
        ]
    }

    fn read_back(bytes: &[u8]) -> Result<(Header, Vec<(u64, RecordLine)>), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup");
        std::fs::write(&path, bytes).unwrap();
        let mut found = Vec::new();
        let header = read(&path, |line, record| {
            found.push((line, record));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((header, found))
    }

    #[test]
    fn a_backup_reads_back_with_its_header_and_the_line_of_each_record() {
        let (header, records) = read_back(&backup(&lines())).unwrap();
        assert_eq!(header.revision, 7);
        assert_eq!(header.history_id.as_deref(), Some("abc"));
        let expected: Vec<(u64, RecordLine)> = (2..).zip(lines()).collect();
        assert_eq!(records, expected);
        assert!(read_back(&backup(&[])).unwrap().1.is_empty());
    }

    #[test]
    fn a_truncated_or_edited_backup_is_refused() {
        let whole = backup(&lines());
        let text = String::from_utf8(whole.clone()).unwrap();
        let cases = [
            (whole[..whole.len() - 20].to_vec(), "without its end line"),
            (
                text.replace("\"revision\":7", "\"revision\":8")
                    .into_bytes(),
                "altered or damaged",
            ),
            (
                text.replace("sam", "eve").into_bytes(),
                "altered or damaged",
            ),
            (
                [&whole[..], b"{\"member\":{}}\n"].concat(),
                "more follows it",
            ),
            (
                text.lines()
                    .filter(|l| !l.contains("sam"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes(),
                "altered or damaged",
            ),
            (
                text.lines()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
                "not the header",
            ),
        ];
        for (bytes, says) in cases {
            let error = read_back(&bytes).unwrap_err();
            assert!(error.contains(says), "{says}: {error}");
        }
    }
}
