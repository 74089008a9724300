//! The callers file: who may call, with which scopes, on which workspaces, and whether
//! they may speak for a user (`actor_user_id`). Tokens are stored as SHA-256 digests and
//! compared in constant time, whatever their length, so the file can be read by whoever
//! deploys it without giving away a credential.
//!
//! A caller is recognised by its token, or over mTLS by a name its client certificate
//! carries; an entry lists either or both.
//!
//! ```toml
//! [[caller]]
//! name = "orders"                       # logged, and recorded with its writes
//! token_sha256 = "<64 hex digits>"      # `accessd callers hash` prints it
//! certificate_names = ["orders.prod.svc"] # a client certificate's CN or SAN (mTLS)
//! scopes = ["check"]                    # check, replicate, admin
//! workspaces = ["acme", "globex"]       # optional: only these workspaces
//! may_name_actor = false                # optional: may set `actor_user_id`
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::WorkspaceId;

/// What a caller may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// AccessService: checks, listings, lookups.
    Check,
    /// ReplicationService: a follower's snapshot and change stream.
    Replicate,
    /// Everything.
    Admin,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Check => "check",
            Self::Replicate => "replicate",
            Self::Admin => "admin",
        })
    }
}

/// A caller, once its credential is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its name, for logs and the audit trail.
    pub name: String,
    /// What it may call.
    pub scopes: BTreeSet<Scope>,
    /// The only workspaces it may name, if it is bound to some.
    pub workspaces: Option<BTreeSet<WorkspaceId>>,
    /// Whether it may name an acting user.
    pub may_name_actor: bool,
}

impl Caller {
    /// Whether it may call what needs `scope` (admin may call everything).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether it may name workspace `id`.
    pub fn may_use(&self, id: &str) -> bool {
        self.workspaces.as_ref().is_none_or(|ids| ids.contains(id))
    }
}

/// The callers of a file.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    /// Each caller with the digest of its token, if it has one.
    entries: Vec<(Caller, Option<[u8; 32]>)>,
    /// The index in `entries` of the caller each certificate name identifies.
    by_certificate_name: BTreeMap<String, usize>,
}

/// Why a callers file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CallersError {
    /// Not TOML of the expected shape.
    #[error("{0}")]
    Format(String),
    /// An entry is wrong.
    #[error("caller `{name}`: {why}")]
    Entry {
        /// The entry's name.
        name: String,
        /// What is wrong.
        why: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    caller: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    token_sha256: Option<String>,
    #[serde(default)]
    certificate_names: Vec<String>,
    scopes: Vec<Scope>,
    #[serde(default)]
    workspaces: Option<Vec<String>>,
    #[serde(default)]
    may_name_actor: bool,
}

impl Callers {
    /// Reads a callers file.
    pub fn parse(text: &str) -> Result<Self, CallersError> {
        let file: File = toml::from_str(text).map_err(|e| CallersError::Format(e.to_string()))?;
        let mut names = BTreeSet::new();
        let mut digests = BTreeSet::new();
        let mut by_certificate_name = BTreeMap::new();
        let mut entries = Vec::with_capacity(file.caller.len());
        for entry in file.caller {
            let wrong = |why: String| CallersError::Entry {
                name: entry.name.clone(),
                why,
            };
            if entry.name.is_empty() || !entry.name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(wrong("a name is printable ASCII without spaces".into()));
            }
            if !names.insert(entry.name.clone()) {
                return Err(wrong("named twice".into()));
            }
            let digest = entry
                .token_sha256
                .as_deref()
                .map(|hex| {
                    parse_digest(hex).ok_or_else(|| {
                        wrong(
                            "`token_sha256` is 64 hex digits (`accessd callers hash` prints it)"
                                .into(),
                        )
                    })
                })
                .transpose()?;
            if digest.is_some_and(|digest| !digests.insert(digest)) {
                return Err(wrong("its token is another caller's".into()));
            }
            if digest.is_none() && entry.certificate_names.is_empty() {
                return Err(wrong(
                    "a caller has a `token_sha256`, `certificate_names`, or both".into(),
                ));
            }
            for certificate_name in &entry.certificate_names {
                if certificate_name.is_empty() {
                    return Err(wrong("a certificate name is not empty".into()));
                }
                if by_certificate_name
                    .insert(certificate_name.clone(), entries.len())
                    .is_some()
                {
                    return Err(wrong(format!(
                        "certificate name `{certificate_name}` is another caller's"
                    )));
                }
            }
            if entry.scopes.is_empty() {
                return Err(wrong(
                    "`scopes` names at least one of check, replicate, admin".into(),
                ));
            }
            let workspaces = entry
                .workspaces
                .map(|ids| {
                    ids.iter()
                        .map(|id| {
                            WorkspaceId::parse(id)
                                .map_err(|e| wrong(format!("workspace `{id}`: {e}")))
                        })
                        .collect::<Result<BTreeSet<_>, _>>()
                })
                .transpose()?;
            entries.push((
                Caller {
                    name: entry.name,
                    scopes: entry.scopes.into_iter().collect(),
                    workspaces,
                    may_name_actor: entry.may_name_actor,
                },
                digest,
            ));
        }
        Ok(Self {
            entries,
            by_certificate_name,
        })
    }

    /// Reads the callers file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the callers file `{}`: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("callers file `{}`: {e}", path.display()))
    }

    /// The caller whose token is `token`. Every entry is compared, each in constant
    /// time over the fixed-length digest, so neither the token's length nor how much of
    /// it matches shows in the time taken.
    pub fn identify(&self, token: &str) -> Option<&Caller> {
        let digest = token_digest(token);
        let mut found = None;
        for (caller, stored) in &self.entries {
            // A caller without a token is compared with all zeros, which is no token's
            // digest (finding one would take a preimage of SHA-256), so that every
            // entry takes the same time.
            let stored = stored.unwrap_or([0; 32]);
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(caller);
            }
        }
        found
    }

    /// The caller a client certificate with `names` identifies: the one entry listing
    /// any of them. Names listed by no entry are ignored; names of two different
    /// callers identify neither, and are an error naming both.
    pub fn identify_certificate<'n>(
        &self,
        names: impl IntoIterator<Item = &'n String>,
    ) -> Result<Option<&Caller>, String> {
        let mut found: Option<usize> = None;
        for name in names {
            let Some(&index) = self.by_certificate_name.get(name) else {
                continue;
            };
            match found {
                Some(other) if other != index => {
                    let name_of = |i: usize| self.entries.get(i).map_or("?", |(c, _)| &c.name);
                    return Err(format!(
                        "the client certificate names two callers, `{}` and `{}`",
                        name_of(other),
                        name_of(index)
                    ));
                }
                _ => found = Some(index),
            }
        }
        Ok(found.and_then(|index| self.entries.get(index).map(|(caller, _)| caller)))
    }

    /// How many callers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The SHA-256 digest of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The digest as the file writes it: 64 lowercase hex digits.
pub fn digest_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0_u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &str) -> String {
        entries.to_owned()
    }

    fn entry(name: &str, token: &str, rest: &str) -> String {
        format!(
            "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n{rest}\n",
            digest_hex(&token_digest(token))
        )
    }

    #[test]
    fn callers_are_recognised_by_their_token_only() {
        let callers = Callers::parse(&file(&format!(
            "{}{}",
            entry(
                "orders",
                "t-orders",
                "scopes = [\"check\"]\nworkspaces = [\"acme\"]"
            ),
            entry(
                "control",
                "t-control",
                "scopes = [\"admin\"]\nmay_name_actor = true"
            ),
        )))
        .unwrap();
        assert_eq!(callers.len(), 2);
        let orders = callers.identify("t-orders").unwrap();
        assert_eq!(orders.name, "orders");
        assert!(orders.has(Scope::Check) && !orders.has(Scope::Admin));
        assert!(!orders.has(Scope::Replicate));
        assert!(orders.may_use("acme") && !orders.may_use("globex"));
        assert!(!orders.may_name_actor);
        let control = callers.identify("t-control").unwrap();
        assert!(control.has(Scope::Check) && control.has(Scope::Replicate));
        assert!(control.may_use("anything") && control.may_name_actor);
        for wrong in ["", "t-order", "t-orders ", "T-ORDERS"] {
            assert!(callers.identify(wrong).is_none(), "{wrong:?}");
        }
    }

    #[test]
    fn a_wrong_file_is_refused_naming_the_entry_and_the_reason() {
        let cases = [
            (entry("a", "x", "scopes = []"), "caller `a`: `scopes`"),
            (
                entry("a", "x", "scopes = [\"check\"]") + &entry("a", "y", "scopes = [\"check\"]"),
                "caller `a`: named twice",
            ),
            (
                entry("a", "x", "scopes = [\"check\"]") + &entry("b", "x", "scopes = [\"check\"]"),
                "caller `b`: its token is another caller's",
            ),
            (
                "[[caller]]\nname = \"a\"\ntoken_sha256 = \"abc\"\nscopes = [\"check\"]\n".into(),
                "64 hex digits",
            ),
            (
                entry("a", "x", "scopes = [\"write\"]"),
                "unknown variant `write`",
            ),
            (
                entry("a", "x", "scopes = [\"check\"]\nworkspaces = [\"a b\"]"),
                "workspace `a b`",
            ),
            (
                entry("a", "x", "scopes = [\"check\"]\ncolor = 1"),
                "unknown field `color`",
            ),
        ];
        for (text, says) in cases {
            let err = Callers::parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{says:?} not in {err}");
        }
    }
}
