//! Records packed into chunks: the members of a workspace, and its instances of each
//! type, are stored a chunk of about [`DEFAULT_PERIOD`] records per sled key rather than
//! one record per key. sled's cost is per key (each one is a delta in its log, an entry
//! in a leaf of at most 17, a step of every scan), so chunks make a bulk import several
//! times cheaper for sled and leave a restart a fraction of the keys to read.
//!
//! Where a chunk starts depends on its records' ids alone (content-defined chunking):
//! a record whose id [`Boundaries::starts`] a chunk begins one, and each chunk runs up to
//! the next such record. The first records of a workspace (or type), before any that
//! starts a chunk, form its head chunk. So the chunk that holds a record is found from
//! the in-memory state, without reading the database, and adding or removing a record
//! changes its own chunk and, if the record starts one, the chunk before it: nothing
//! else moves.
//!
//! Whether an id starts a chunk is a hash of the id keyed by a seed drawn when the
//! database was created, so that ids cannot be chosen to make one chunk of a whole
//! workspace; the seed and the mean chunk size (the period) are stored in the database,
//! which so keeps its layout whatever later releases choose for new databases. Chunk
//! sizes are geometric with mean the period; with [`DEFAULT_PERIOD`], a sled leaf holds
//! at most 17 of them, which keeps leaves of ordinary records far below the size over
//! which sled stores a leaf as a file of its own (one member with thousands of grants
//! still makes its chunk as large as its record).
//!
//! A chunk's value is its records in id order, each `{id} 0 {record}`, separated by the
//! byte 0x1E (record separator): ids are printable ASCII, and records are printable text
//! with NUL and newline separators, so neither byte occurs inside one.

use std::hash::{BuildHasher, Hasher};

/// The mean number of records of a chunk, in new databases. A trade: with 16, a bulk
/// import was as fast and restarts a little faster, but a single durable write, which
/// rewrites its chunk, cost 60 µs of server CPU where 8 costs 46 (35 with a key per
/// record).
pub const DEFAULT_PERIOD: u64 = 8;

/// The byte between two records of a chunk.
const RECORD_SEPARATOR: u8 = 0x1e;

/// Which ids start a chunk, for one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundaries {
    seed: u64,
    period: u64,
}

impl Boundaries {
    /// The boundaries of a database whose seed is `seed` and whose chunks hold `period`
    /// records on average (at least 1).
    pub fn new(seed: u64, period: u64) -> Self {
        Self {
            seed,
            period: period.max(1),
        }
    }

    /// Boundaries for a new database: a random seed and the default period.
    pub fn drawn() -> Self {
        // std's hasher keys are drawn from the operating system's random source.
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u64(0);
        Self::new(hasher.finish(), DEFAULT_PERIOD)
    }

    /// The stored form: the seed, then the period, each u64 big-endian.
    pub fn encode(&self) -> [u8; 16] {
        let mut bytes = [0; 16];
        let (seed, period) = bytes.split_at_mut(8);
        seed.copy_from_slice(&self.seed.to_be_bytes());
        period.copy_from_slice(&self.period.to_be_bytes());
        bytes
    }

    /// Boundaries from their stored form; `None` if it is not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (seed, period) = bytes.split_first_chunk::<8>()?;
        let period: [u8; 8] = period.try_into().ok()?;
        let period = u64::from_be_bytes(period);
        (period > 0).then(|| Self::new(u64::from_be_bytes(*seed), period))
    }

    /// Whether a record with id `id` starts a chunk. FNV-1a keyed by the seed, then a
    /// finalizer that spreads every input bit over the low bits: defined here, because
    /// the stored layout depends on it never changing.
    pub fn starts(&self, id: &[u8]) -> bool {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ self.seed;
        for byte in id {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        hash % self.period == 0
    }

    /// The start of the chunk that holds (or would hold) a record, given the ids of the
    /// records up to it, nearest first (its own included if it is there): the first of
    /// them that starts a chunk, or `None` for the head chunk.
    pub fn start_among<'a, K: AsRef<str> + 'a>(
        &self,
        mut down: impl Iterator<Item = &'a K>,
    ) -> Option<&'a K> {
        down.find(|id| self.starts(id.as_ref().as_bytes()))
    }

    /// The records of one chunk, given the records from its start onwards, in id order:
    /// the first one, then every one up to the next that starts a chunk. For the head
    /// chunk (`head`), the first record too must not start one.
    pub fn chunk<'a, K: AsRef<str> + 'a, V: 'a>(
        self,
        head: bool,
        up: impl Iterator<Item = (&'a K, &'a V)>,
    ) -> impl Iterator<Item = (&'a K, &'a V)> {
        up.enumerate()
            .take_while(move |(at, (id, _))| {
                (*at == 0 && !head) || !self.starts(id.as_ref().as_bytes())
            })
            .map(|(_, record)| record)
    }
}

/// Appends record `id` with contents `record` to a chunk value.
pub fn push(value: &mut Vec<u8>, id: &str, record: &[u8]) {
    if !value.is_empty() {
        value.push(RECORD_SEPARATOR);
    }
    value.extend_from_slice(id.as_bytes());
    value.push(0);
    value.extend_from_slice(record);
}

/// The records of a chunk value, as (id, record); `None` for one without an id.
pub fn records(value: &[u8]) -> impl Iterator<Item = Option<(&[u8], &[u8])>> {
    value.split(|b| *b == RECORD_SEPARATOR).map(|record| {
        let at = record.iter().position(|b| *b == 0)?;
        let (id, rest) = record.split_at(at);
        Some((id, rest.get(1..).unwrap_or_default())).filter(|_| !id.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn chunk_boundaries_are_fixed_by_seed_and_period_and_start_one_chunk_per_period() {
        let ids: Vec<String> = (0..16_000).map(|n| format!("usr_{n:08}")).collect();
        let starting = |seed, period| {
            let boundaries = Boundaries::new(seed, period);
            ids.iter()
                .filter(|id| boundaries.starts(id.as_bytes()))
                .count()
        };
        for period in [4, 8, 16] {
            let expected = 16_000 / period as usize;
            let found = starting(7, period);
            assert!(
                found > expected * 9 / 10 && found < expected * 11 / 10,
                "{found} of 16,000 with a period of {period}"
            );
        }
        // Stored layouts depend on these values: they must never change.
        let boundaries = Boundaries::new(7, 16);
        let known: Vec<bool> = ["a", "usr_1", "usr_2", "src_QWzEiaAzsqKWT9b8oIAWCA"]
            .iter()
            .map(|id| boundaries.starts(id.as_bytes()))
            .collect();
        assert_eq!(known, [false, false, false, false]);
        let firsts: Vec<usize> = (0..ids.len())
            .filter(|at| boundaries.starts(ids[*at].as_bytes()))
            .take(6)
            .collect();
        assert_eq!(firsts, [17, 29, 34, 62, 63, 70]);
        let other = Boundaries::new(8, 16);
        assert!(
            ids.iter()
                .any(|id| boundaries.starts(id.as_bytes()) != other.starts(id.as_bytes())),
            "another seed draws other boundaries"
        );
    }

    #[test]
    fn boundaries_read_back_as_they_were_stored() {
        let boundaries = Boundaries::new(0x0102_0304_0506_0708, 16);
        assert_eq!(Boundaries::decode(&boundaries.encode()), Some(boundaries));
        assert_eq!(Boundaries::decode(&[0; 16]), None, "a period of 0");
        assert_eq!(Boundaries::decode(&[1; 8]), None, "too short");
        assert_ne!(Boundaries::drawn(), Boundaries::drawn());
    }

    #[test]
    fn records_read_back_as_they_were_pushed() {
        let mut value = Vec::new();
        push(&mut value, "u1", b"owner\nrole\0a");
        push(&mut value, "u2", b"");
        push(&mut value, "src", b"source\0s1");
        let read: Vec<_> = records(&value).collect();
        assert_eq!(
            read,
            [
                Some((&b"u1"[..], &b"owner\nrole\0a"[..])),
                Some((&b"u2"[..], &b""[..])),
                Some((&b"src"[..], &b"source\0s1"[..])),
            ]
        );
        assert_eq!(records(b"no separator").next(), Some(None));
        assert_eq!(records(b"\0empty id").next(), Some(None));
    }

    proptest! {
        /// Chunks cover every record once, in order, each starting where
        /// `start_among` says its records' chunk starts.
        #[test]
        fn chunks_partition_the_records_where_start_among_says(
            seed in any::<u64>(),
            ids in proptest::collection::btree_set("[a-z0-9]{1,6}", 0..200),
        ) {
            let boundaries = Boundaries::new(seed, DEFAULT_PERIOD);
            let records: Vec<(String, ())> = ids.into_iter().map(|id| (id, ())).collect();
            let mut covered = Vec::new();
            let mut at = 0;
            let mut first = true;
            while at < records.len() {
                let rest = records.get(at..).unwrap_or_default();
                let chunk: Vec<&String> = boundaries
                    .chunk(first, rest.iter().map(|(k, v)| (k, v)))
                    .map(|(k, _)| k)
                    .collect();
                if chunk.is_empty() {
                    // An empty head chunk: the first record starts a chunk of its own.
                    prop_assert!(first);
                    first = false;
                    continue;
                }
                let start = if first { None } else { chunk.first().copied() };
                for id in &chunk {
                    let upto = records.iter().filter(|(k, _)| k <= *id).map(|(k, _)| k).rev();
                    prop_assert_eq!(boundaries.start_among(upto), start);
                }
                at += chunk.len();
                covered.extend(chunk);
                first = false;
            }
            prop_assert_eq!(covered, records.iter().map(|(k, _)| k).collect::<Vec<_>>());
        }
    }
}
