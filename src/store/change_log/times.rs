//! When a segment's entries were made, read from one end of its file, never the whole
//! of it: its newest, to know when it expires; its oldest, to say where the trail starts.

use std::{
    fs::File,
    io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom},
    path::Path,
};

use super::format::{LINE_BYTES, line_unix_millis};

/// How many bytes are read from the end of a file at a time: a few lines of the log.
const TAIL_BYTES: u64 = 4 * LINE_BYTES as u64;

/// When the entry of the last whole line of the segment at `path` was made, in
/// milliseconds since the Unix epoch; 0 if no whole line says (an empty file, a damaged
/// last line). A torn line after it, which recovery cuts, is passed over.
pub fn newest_unix_millis(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    // `tail` holds the file's bytes from `from` to its end, read back to front until it
    // holds a whole last line.
    let mut tail: Vec<u8> = Vec::new();
    let mut from = len;
    loop {
        let start = from.saturating_sub(TAIL_BYTES);
        let mut chunk = vec![0; usize::try_from(from - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        from = start;
        let Some(end) = tail.iter().rposition(|b| *b == b'\n') else {
            if from == 0 {
                return Ok(0);
            }
            continue;
        };
        let before = tail.get(..end).unwrap_or_default();
        let line_start = match before.iter().rposition(|b| *b == b'\n') {
            Some(newline) => newline + 1,
            None if from == 0 => 0,
            None => continue,
        };
        let line = tail.get(line_start..=end).unwrap_or_default();
        return Ok(line_unix_millis(line).unwrap_or(0));
    }
}

/// When the entry of the first line of the segment at `path` was made, in milliseconds
/// since the Unix epoch; 0 if it has no line that says.
pub fn oldest_unix_millis(path: &Path) -> io::Result<u64> {
    let mut line = Vec::new();
    // A first line is at most a line's worth of changes and its fields; a longer one
    // is not of this log.
    BufReader::new(File::open(path)?.take(TAIL_BYTES)).read_until(b'\n', &mut line)?;
    Ok(line_unix_millis(&line).unwrap_or(0))
}
