//! What the data directory takes on disk, read when asked (a metrics scrape): the store
//! owns the directory's layout, so the change log's files are told apart here.

use std::{fs, path::Path};

use super::{CHANGE_LOG_DIR, change_log::SEGMENT_EXTENSION};

/// The data directory's size on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes of every file in the data directory, the change log included.
    pub directory_bytes: u64,
    /// Bytes of the change log's segment files.
    pub change_log_bytes: u64,
    /// The change log's segment files.
    pub change_log_files: u64,
}

/// What `dir` takes; a file that cannot be read counts 0.
pub fn measure(dir: &Path) -> DiskUsage {
    let (change_log_files, change_log_bytes) = segments(&dir.join(CHANGE_LOG_DIR));
    DiskUsage {
        directory_bytes: bytes_under(dir),
        change_log_bytes,
        change_log_files,
    }
}

/// The bytes of every file under `dir`, however deep.
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => dirs.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The change log's segment files in `log_dir`, and their bytes.
fn segments(log_dir: &Path) -> (u64, u64) {
    let Ok(entries) = fs::read_dir(log_dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .path()
                .extension()
                .is_some_and(|e| e == SEGMENT_EXTENSION)
        })
        .fold((0, 0), |(files, bytes), entry| {
            (files + 1, bytes + entry.metadata().map_or(0, |m| m.len()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_file_and_the_change_logs_segments_apart() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("db"), [0; 100]).unwrap();
        let log = dir.path().join(CHANGE_LOG_DIR);
        fs::create_dir(&log).unwrap();
        fs::write(
            log.join(format!("00000000000000000001.{SEGMENT_EXTENSION}")),
            [0; 30],
        )
        .unwrap();
        fs::write(log.join("bootstrap.tmp"), [0; 5]).unwrap();
        assert_eq!(
            measure(dir.path()),
            DiskUsage {
                directory_bytes: 135,
                change_log_bytes: 30,
                change_log_files: 1,
            }
        );
        assert_eq!(measure(&dir.path().join("absent")), DiskUsage::default());
    }
}
