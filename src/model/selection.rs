//! Which workspaces a follower holds: all of them, a list, or a hash shard. The shard
//! of a workspace is a pure function of its id (FNV-1a, 64 bits, modulo the number of
//! shards), so that a tenant-sharded service can route each tenant to the sidecar
//! holding it, and so that leader and follower agree without asking each other.

use std::{collections::BTreeSet, fmt, str::FromStr};

use super::ids::{IdError, WorkspaceId};

/// The most shards a selection may name.
pub const MAX_SHARDS: u32 = 65_536;
/// The most workspaces a list may name.
pub const MAX_LISTED: usize = 10_000;

/// The workspaces a server holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every workspace.
    #[default]
    All,
    /// Only these, whether they exist yet or not.
    Workspaces(BTreeSet<WorkspaceId>),
    /// Only those whose id hashes to shard `index` of `count`.
    Shard {
        /// From 0.
        index: u32,
        /// At least 1.
        count: u32,
    },
}

/// Why a selection is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A listed workspace id is not an id.
    #[error("workspace id `{0}`: {1}")]
    BadId(String, IdError),
    /// The list is empty or too long.
    #[error("a list names 1 to {MAX_LISTED} workspaces, got {0}")]
    ListSize(usize),
    /// The shard is not `INDEX/COUNT` with `INDEX < COUNT <= MAX_SHARDS`.
    #[error("a shard is INDEX/COUNT with 0 <= INDEX < COUNT <= {MAX_SHARDS}, got `{0}`")]
    BadShard(String),
    /// Not one of the forms.
    #[error("expected `all`, `workspaces:ID,ID,...` or `shard:INDEX/COUNT`, got `{0}`")]
    Form(String),
}

impl Selection {
    /// The selection of a list of ids.
    pub fn workspaces<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<Self, SelectionError> {
        let set = ids
            .into_iter()
            .map(|id| WorkspaceId::parse(id).map_err(|e| SelectionError::BadId(id.to_owned(), e)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() || set.len() > MAX_LISTED {
            return Err(SelectionError::ListSize(set.len()));
        }
        Ok(Self::Workspaces(set))
    }

    /// The selection of shard `index` of `count`.
    pub fn shard(index: u32, count: u32) -> Result<Self, SelectionError> {
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(SelectionError::BadShard(format!("{index}/{count}")));
        }
        Ok(Self::Shard { index, count })
    }

    /// Whether the workspace `id` is held.
    pub fn holds(&self, id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Workspaces(ids) => ids.contains(id),
            Self::Shard { index, count } => shard_of(id, *count) == *index,
        }
    }

    /// Whether every workspace is held.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// The shard of `count` that the workspace `id` belongs to: FNV-1a (64 bits) of the id's
/// bytes, modulo `count`. Part of the interface: it must never change.
pub fn shard_of(id: &str, count: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = id
        .bytes()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(b)).wrapping_mul(PRIME));
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

/// `all`, `workspaces:A,B` or `shard:I/N`: the form the flags take, the status reports
/// and a follower stores.
impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Workspaces(ids) => {
                f.write_str("workspaces:")?;
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(id.as_str())?;
                }
                Ok(())
            }
            Self::Shard { index, count } => write!(f, "shard:{index}/{count}"),
        }
    }
}

impl FromStr for Selection {
    type Err = SelectionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(Self::All);
        }
        if let Some(list) = s.strip_prefix("workspaces:") {
            return Self::workspaces(list.split(',').filter(|id| !id.is_empty()));
        }
        if let Some(shard) = s.strip_prefix("shard:") {
            let bad = || SelectionError::BadShard(shard.to_owned());
            let (index, count) = shard.split_once('/').ok_or_else(bad)?;
            let index = index.parse().map_err(|_| bad())?;
            let count = count.parse().map_err(|_| bad())?;
            return Self::shard(index, count);
        }
        Err(SelectionError::Form(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_read_back_as_they_print() {
        for text in ["all", "workspaces:a,b,c", "shard:0/1", "shard:2/3"] {
            let selection: Selection = text.parse().unwrap();
            assert_eq!(selection.to_string(), text);
        }
        // Lists are sets, printed in id order.
        let listed: Selection = "workspaces:b,a,b".parse().unwrap();
        assert_eq!(listed.to_string(), "workspaces:a,b");
    }

    #[test]
    fn malformed_selections_are_refused_with_the_reason() {
        for bad in [
            "",
            "some",
            "workspaces:",
            "workspaces:a b",
            "shard:3/3",
            "shard:1/0",
            "shard:1",
            "shard:x/2",
            "shard:0/70000",
        ] {
            assert!(bad.parse::<Selection>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            "shard:3/3".parse::<Selection>().unwrap_err().to_string(),
            "a shard is INDEX/COUNT with 0 <= INDEX < COUNT <= 65536, got `3/3`"
        );
    }

    #[test]
    fn a_list_holds_exactly_its_workspaces() {
        let listed: Selection = "workspaces:acme,globex".parse().unwrap();
        assert!(listed.holds("acme") && listed.holds("globex"));
        assert!(!listed.holds("initech"));
        assert!(Selection::All.holds("anything"));
    }

    #[test]
    fn shards_partition_the_workspaces() {
        let count = 5;
        let shards: Vec<Selection> = (0..count)
            .map(|i| Selection::shard(i, count).unwrap())
            .collect();
        let mut sizes = vec![0; count as usize];
        for n in 0..10_000 {
            let id = format!("tenant-{n}");
            let holders: Vec<usize> = (0..shards.len())
                .filter(|&i| shards[i].holds(&id))
                .collect();
            assert_eq!(holders.len(), 1, "{id} is held by {holders:?}");
            sizes[holders[0]] += 1;
        }
        // FNV-1a spreads sequential ids evenly enough for tenants.
        assert!(
            sizes.iter().all(|&s| (1_500..2_500).contains(&s)),
            "{sizes:?}"
        );
    }

    #[test]
    fn the_shard_function_is_fnv1a_and_never_changes() {
        // Known FNV-1a 64 values: the empty string hashes to the offset basis, and "a"
        // to 0xaf63dc4c8601ec8c.
        assert_eq!(
            shard_of("", u32::MAX),
            (0xcbf2_9ce4_8422_2325_u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(
            shard_of("a", 1_000),
            (0xaf63_dc4c_8601_ec8c_u64 % 1_000) as u32
        );
    }
}
