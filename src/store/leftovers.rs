//! What a crash or a full disk may leave in a data directory that would stop the next
//! open, recognised and removed before sled reads the directory, each with a log line.
//!
//! - sled writes a snapshot of its page table to `snap.<lsn>.generating`, syncs it, and
//!   only then renames it `snap.<lsn>`. A `.generating` file is therefore never a
//!   snapshot sled finished: the previous snapshot and sled's log, which sled removes
//!   only after a rename, still hold everything. But sled's recovery reads the file
//!   whose name sorts last among `snap.*`, and `snap.<lsn>.generating` sorts after
//!   `snap.<lsn>`: an empty or torn one (a full disk leaves one empty) makes every later
//!   open fail with "Read corrupted data".
//! - The writer's probe of free space (`SPACE_PROBE`), if it was killed in between.
//!
//! The other leftovers are cleaned where they are read: a torn or unfinished group at
//! the end of the change log by its recovery, a blob file sled wrote past what its log
//! holds by sled's own recovery, an interrupted bootstrap by its marker.

use std::{fs, io, path::Path};

use tracing::warn;

/// The file the writer writes and removes to learn whether the data volume has space
/// again, in the data directory.
pub const SPACE_PROBE: &str = "accessd-space-probe";

/// Removes the leftovers in `dir` (see the module's documentation); returns how many.
pub fn clean(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let what = if name.starts_with("snap.") && name.ends_with(".generating") {
            "a snapshot sled did not finish writing"
        } else if name == SPACE_PROBE {
            "the probe of free space of an earlier run"
        } else {
            continue;
        };
        let bytes = entry.metadata().map_or(0, |m| m.len());
        fs::remove_file(entry.path())?;
        warn!(
            file = name,
            bytes, "removed {what}, left by a crash or a full disk"
        );
        removed += 1;
    }
    if removed > 0 {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unfinished_snapshots_and_the_probe_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let keep = ["snap.000000000000A2F0", "db", "conf", "snap.notes"];
        let leftovers = ["snap.000000000000B000.generating", SPACE_PROBE];
        for name in keep.iter().chain(&leftovers) {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(clean(dir.path()).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = keep.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(clean(dir.path()).unwrap(), 0);
    }
}
